/*
 * switchboard error codes.
 *
 * Every function in libswitchboard that can fail returns an int: 0 on success or one of the
 * negative SB_E* codes below. Codes at or below SB_EFATAL_BASE are fatal for the object they
 * were returned by (a connection, a server): the caller must tear it down. All other codes
 * are recoverable: the object is still usable and the call may be retried or skipped.
 *
 * Syscall failures are reported as -errno (always > SB_ERR_BASE), so callers can tell them
 * apart from switchboard's own codes with sb_err_is_errno().
 */
#ifndef SWITCHBOARD_ERROR_H
#define SWITCHBOARD_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum sb_err {
  SB_OK = 0,
  SB_ERR_BASE = -10000,    /* codes below this are switchboard's own; above it, -errno */
  SB_EINVAL = -10001,      /* an argument is invalid (bad header name, bad config value) */
  SB_ENOMEM = -10002,      /* an allocation failed; the object is unchanged */
  SB_ESTATE = -10003,      /* the call is not allowed in the object's current state */
  SB_ECANCELED = -10004,   /* the peer went away or reset the stream; nothing was sent */
  SB_ELIMIT = -10005,      /* a configured limit would be exceeded */
  SB_EPROTO = -10006,      /* the peer violated its protocol */
  SB_ENOTFOUND = -10007,   /* no such item */
  SB_EAGAIN = -10008,      /* try again later (a buffer is full) */
  SB_ENOSPC = -10009,      /* the disk is full or below its configured reserve; retry later */
  SB_ECORRUPT = -10010,    /* stored data failed its checksum or validity checks */
  SB_EFATAL_BASE = -10100, /* codes at or below this are fatal for the object */
  SB_EIO = -10101,         /* an unrecoverable I/O error on the underlying transport */
  SB_ETLS = -10102,        /* a TLS failure (handshake, certificate, key) */
};

/* Returns a static, human-readable description of err (never NULL). */
const char *sb_strerror(int err);

/* Returns 1 when err is a negated errno value rather than a switchboard code. */
static inline int sb_err_is_errno(int err) {
  return err < 0 && err > SB_ERR_BASE;
}

/* Returns 1 when err is fatal for the object that returned it. */
static inline int sb_err_is_fatal(int err) {
  return err <= SB_EFATAL_BASE;
}

#ifdef __cplusplus
}
#endif
#endif
