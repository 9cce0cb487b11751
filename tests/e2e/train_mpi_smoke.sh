#!/usr/bin/env bash
# ompq_train data parallel under mpirun -np 2 on a Fashion-MNIST slice: every stage runs, rank 0
# alone logs and writes; killed during QAT, the same command on ONE process resumes from the
# 2-rank checkpoint, recomputes its place in the epoch and says so. Then the same on JPEG files
# (--dataset=imagenet; that the ranks' shards cover every image once per epoch is
# tests/mpi/image_folder_shard_test.cc).
#   train_mpi_smoke.sh MPIEXEC PATH_TO_OMPQ_TRAIN PATH_TO_CONVERTER_SCRIPT
source "$(dirname "$0")/common.sh"
mpiexec=$1
train=$2
convert=$3
require_fashion_mnist
flags=(--output_dir="$out/run" --threads=1 --train_limit=1024 --test_limit=300 --batch_size=32
       --eval_batch_size=100 --log_interval=8 --checkpoint_steps=4 --search_images=8 --epochs=1
       --warmup_iterations=4 --qat_epochs=4)
mpirun=("$mpiexec" -np 2 --allow-run-as-root --oversubscribe)

# 1. Two ranks, killed once the first QAT checkpoint exists.
"${mpirun[@]}" "$train" "${flags[@]}" > "$out/log1" 2>&1 &
kill_once_exists "$out/run/qat_checkpoint.safetensors" $! "$out/log1"
pkill -KILL -f -- "--output_dir=$out/run" || true  # ranks mpirun leaves behind after its SIGKILL
[ "$(grep -c '^ompq experiment:' "$out/log1")" = 1 ] \
  || { cat "$out/log1"; fail "expected the experiment line from rank 0 only"; }
grep -q '\[pretrain\] done' "$out/log1" || { cat "$out/log1"; fail "2-rank pretraining did not finish"; }

# 2. The same command on one process resumes from the 2-rank checkpoint.
"$train" "${flags[@]}" --dist=none > "$out/log2" 2>&1 || { cat "$out/log2"; fail "resume exited non-zero"; }
grep -q '\[pretrain\] finished earlier' "$out/log2" || { cat "$out/log2"; fail "pretraining ran again"; }
grep -q '\[qat\] resuming: the checkpoint was written by 2 rank' "$out/log2" \
  || { cat "$out/log2"; fail "no note that the world size changed"; }
for f in bits.pbtxt quantized.safetensors packed.safetensors report.json; do
  [ -s "$out/run/$f" ] || fail "missing output $f"
done

# 3. A finished folder: two ranks skip every stage and change nothing.
before=$(cd "$out/run" && md5sum stages.pbtxt metrics.csv report.json)
"${mpirun[@]}" "$train" "${flags[@]}" > "$out/log3" 2>&1 || { cat "$out/log3"; fail "rerun exited non-zero"; }
[ "$(grep -c 'finished earlier' "$out/log3")" -ge 5 ] || { cat "$out/log3"; fail "a stage ran again"; }
[ "$before" = "$(cd "$out/run" && md5sum stages.pbtxt metrics.csv report.json)" ] \
  || fail "the rerun changed the outputs"

# 4. Two ranks on an ImageNet-layout folder of JPEGs, every stage.
/usr/bin/python3 "$convert" --output_dir="$out/jpeg" --train_limit=600 --val_limit=200 \
  > "$out/convert.log" 2>&1 || { cat "$out/convert.log"; fail "the converter failed"; }
"${mpirun[@]}" "$train" --dataset=imagenet --data_dir="$out/jpeg" --output_dir="$out/jpeg_run" \
  --threads=1 --workers=1 --batch_size=16 --eval_batch_size=100 --search_images=8 --epochs=1 \
  --qat_epochs=1 > "$out/log4" 2>&1 || { cat "$out/log4"; fail "2 ranks on the image folder exited non-zero"; }
grep -q "ompq experiment: resnet20 on image folder '$out/jpeg/train' (600 images, 10 classes)" "$out/log4" \
  || { cat "$out/log4"; fail "the 2-rank run does not name the image folder"; }
[ -s "$out/jpeg_run/report.json" ] || { cat "$out/log4"; fail "the 2-rank image folder run wrote no report"; }
echo PASS
