# Find the libraries sima links. Every required one fails with a message that
# names the Debian package to install (scripts/setup-deps.sh installs them all).

find_package(PkgConfig REQUIRED)

find_package(MPI REQUIRED COMPONENTS C)

# Parallel HDF5: prefer the MPI build; a serial HDF5 cannot write the shared
# output files collectively, so it is refused.
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR
    "sima needs parallel HDF5, but the HDF5 found (${HDF5_C_INCLUDE_DIRS}) is serial.\n"
    "Install the MPI build: apt-get install libhdf5-openmpi-dev "
    "(or point HDF5_ROOT at a parallel HDF5).")
endif()

find_package(JPEG REQUIRED)
include(CheckSymbolExists)
set(CMAKE_REQUIRED_INCLUDES ${JPEG_INCLUDE_DIRS})
check_symbol_exists(LIBJPEG_TURBO_VERSION_NUMBER "stdio.h;jpeglib.h" SIMA_JPEG_IS_TURBO)
unset(CMAKE_REQUIRED_INCLUDES)
if(NOT SIMA_JPEG_IS_TURBO)
  message(FATAL_ERROR "sima needs libjpeg-turbo (apt-get install libjpeg62-turbo-dev); "
                      "the libjpeg found at ${JPEG_LIBRARIES} is not turbo")
endif()

find_package(PNG)
if(NOT PNG_FOUND)
  message(FATAL_ERROR "libpng not found (sima decodes PNG images with it): apt-get install libpng-dev")
endif()

# OpenBLAS built with OpenMP, so that BLAS calls and our own OpenMP loops
# share one thread pool (the pthread build spins its own threads against
# OpenMP's and halves throughput on small machines).
find_library(SIMA_OPENBLAS_LIB openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
find_path(SIMA_BLAS_INCLUDE cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/aarch64-linux-gnu/openblas-openmp
  NO_DEFAULT_PATH)
if(NOT SIMA_OPENBLAS_LIB OR NOT SIMA_BLAS_INCLUDE)
  message(FATAL_ERROR "OpenBLAS (OpenMP build) not found: apt-get install libopenblas-openmp-dev")
endif()
set(SIMA_BLAS_LIBS ${SIMA_OPENBLAS_LIB})

pkg_check_modules(JANSSON jansson)
if(NOT JANSSON_FOUND)
  message(FATAL_ERROR "jansson not found: apt-get install libjansson-dev")
endif()

# libcurl: the judge client of sima-bench asks a judge model over HTTP(S).
find_package(CURL QUIET)
if(NOT CURL_FOUND)
  message(FATAL_ERROR "libcurl not found: apt-get install libcurl4-openssl-dev")
endif()

find_package(OpenMP COMPONENTS C)

# CUDA is optional: when the toolkit, cuBLAS and NCCL are all found, the CUDA
# backend is built; otherwise sima is CPU only.
set(SIMA_HAVE_CUDA OFF)
if(NOT SIMA_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  find_package(CUDAToolkit QUIET)
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND TARGET CUDA::cublas)
    find_library(SIMA_NCCL_LIB nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
    find_path(SIMA_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
    if(SIMA_NCCL_LIB AND SIMA_NCCL_INCLUDE)
      set(SIMA_HAVE_CUDA ON)
    endif()
  endif()
  if(SIMA_CUDA STREQUAL "ON" AND NOT SIMA_HAVE_CUDA)
    message(FATAL_ERROR "SIMA_CUDA=ON but the CUDA toolkit, cuBLAS or NCCL was not found")
  endif()
  if(SIMA_HAVE_CUDA)
    if(NOT CMAKE_CUDA_ARCHITECTURES)
      # Ampere (A100) and Hopper (H100/H200)
      set(CMAKE_CUDA_ARCHITECTURES 80 90)
    endif()
    enable_language(CUDA)
  endif()
endif()
