// The libpq boundary. Only the Postgres module imports this.
#ifndef METERLAKE_CLIBPQ_SHIM_H
#define METERLAKE_CLIBPQ_SHIM_H

#include <libpq-fe.h>

// Character-literal macros do not import into Swift.
static const int clibpq_diag_sqlstate = PG_DIAG_SQLSTATE;
static const int clibpq_diag_message_primary = PG_DIAG_MESSAGE_PRIMARY;
static const int clibpq_diag_message_detail = PG_DIAG_MESSAGE_DETAIL;

static void clibpq_ignore_notice(void *arg, const char *message) { (void)arg; (void)message; }

/// Drops server notices ("relation already exists, skipping"); libpq would print them on stderr,
/// which would break the one-JSON-object-a-line log stream.
static inline void clibpq_silence_notices(PGconn *connection) {
    PQsetNoticeProcessor(connection, clibpq_ignore_notice, NULL);
}

#endif
