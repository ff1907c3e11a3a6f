/* The MPI side of tools/dist.c (tools/dist_mpi.c, compiled only when CMake
 * finds MPI: CLSYNTH_HAVE_MPI). */
#ifndef CLSYNTH_TOOLS_DIST_MPI_H
#define CLSYNTH_TOOLS_DIST_MPI_H

#include "tools/dist.h"

int clsynth_dist_mpi_init(clsynth_dist *d, clsynth_err *err);
void clsynth_dist_mpi_finalize(clsynth_dist *d);
void clsynth_dist_mpi_abort(clsynth_dist *d, int code);
/* "Open MPI v4.1.4, ..." (the library's own first line). */
const char *clsynth_dist_mpi_library(void);

#endif
