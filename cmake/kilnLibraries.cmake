# Imported targets for the two system libraries that ship no usable CMake
# package here (Debian's oneDNN config pulls in OpenCL; SentencePiece has
# none). Included by the build and by the installed kilnConfig.cmake, so a
# consumer finds them the same way kiln did.

# kiln::<name> from a header and a library found on the system paths; left
# undefined when either is missing (the includer reports it).
function(kiln_import_library name header library)
  if(TARGET kiln::${name})
    return()
  endif()
  string(TOUPPER ${name} upper)
  find_path(KILN_${upper}_INCLUDE ${header})
  find_library(KILN_${upper}_LIBRARY ${library})
  if(KILN_${upper}_INCLUDE AND KILN_${upper}_LIBRARY)
    add_library(kiln::${name} UNKNOWN IMPORTED)
    set_target_properties(kiln::${name} PROPERTIES IMPORTED_LOCATION "${KILN_${upper}_LIBRARY}"
                                                   INTERFACE_INCLUDE_DIRECTORIES "${KILN_${upper}_INCLUDE}")
  endif()
endfunction()

kiln_import_library(dnnl oneapi/dnnl/dnnl.hpp dnnl)
kiln_import_library(sentencepiece sentencepiece_processor.h sentencepiece)
