// The libzstd boundary (Parquet's ZSTD codec). Only the Compression module imports this.
#ifndef METERLAKE_CZSTD_SHIM_H
#define METERLAKE_CZSTD_SHIM_H

#include <zstd.h>

#endif
