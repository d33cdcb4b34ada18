// The zlib boundary. inflateInit2 is a macro; the wrapper passes the version and struct size.
// Only the Compression module imports this.
#ifndef METERLAKE_CZLIB_SHIM_H
#define METERLAKE_CZLIB_SHIM_H

#include <zlib.h>

static inline int czlib_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);  // gzip wrapper only, 32 KiB window
}

static inline int czlib_deflate_init_gzip(z_stream *stream) {
    return deflateInit2(stream, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // gzip wrapper, best compression
}

#endif
