// The libcurl boundary. Swift cannot call the variadic curl_easy_setopt/curl_easy_getinfo,
// so each argument type gets a typed static inline wrapper. Only the HTTPClient module imports this.
#ifndef METERLAKE_CCURL_SHIM_H
#define METERLAKE_CCURL_SHIM_H

#include <curl/curl.h>

/// Write, header and read callbacks share libcurl's (buffer, size, count, user data) shape.
typedef size_t (*ccurl_io_callback)(char *buffer, size_t size, size_t count, void *userdata);

static inline CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ccurl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ccurl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ccurl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ccurl_setopt_callback(CURL *handle, CURLoption option, ccurl_io_callback value) {
    return curl_easy_setopt(handle, option, value);
}
/// Seek callback for rewinding an upload when libcurl must resend it on a fresh connection.
typedef int (*ccurl_seek_callback)(void *userdata, curl_off_t offset, int origin);
static inline CURLcode ccurl_setopt_seek(CURL *handle, ccurl_seek_callback value) {
    return curl_easy_setopt(handle, CURLOPT_SEEKFUNCTION, value);
}
static inline CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode ccurl_getinfo_offset(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

/// CURL_READFUNC_ABORT is a macro with a cast Swift cannot import.
static inline size_t ccurl_read_abort(void) { return CURL_READFUNC_ABORT; }

#endif
