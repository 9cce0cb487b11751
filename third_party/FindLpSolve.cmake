# Finds lp_solve 5.5 (Debian liblpsolve55-dev). Defines LpSolve::lpsolve.
# Debian's static/shared lp_solve needs colamd and libdl at link time.
find_path(LPSOLVE_INCLUDE_DIR lp_lib.h PATH_SUFFIXES lpsolve lp_solve)
find_library(LPSOLVE_LIBRARY NAMES lpsolve55 lpsolve PATH_SUFFIXES lp_solve)
find_library(COLAMD_LIBRARY NAMES colamd)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LpSolve REQUIRED_VARS LPSOLVE_LIBRARY LPSOLVE_INCLUDE_DIR COLAMD_LIBRARY)
if(LpSolve_FOUND AND NOT TARGET LpSolve::lpsolve)
  add_library(LpSolve::lpsolve UNKNOWN IMPORTED)
  set_target_properties(LpSolve::lpsolve PROPERTIES
    IMPORTED_LOCATION "${LPSOLVE_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${LPSOLVE_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${COLAMD_LIBRARY};${CMAKE_DL_LIBS}")
endif()
mark_as_advanced(LPSOLVE_INCLUDE_DIR LPSOLVE_LIBRARY COLAMD_LIBRARY)
