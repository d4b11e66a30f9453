/*
 * SNS message signatures (sns_int.h): the signing key and certificate, the canonical string
 * SNS signs, and the signature itself.
 *
 * The key is RSA 2048 with a self-signed certificate, both PEM in one file: the one given
 * (--sns-signing-key), else <data>/sns-signing.pem, generated on first start (mode 0600) and
 * reused afterwards so receivers that cached the certificate keep verifying. Receivers fetch
 * the certificate from the SigningCertURL every envelope carries: the server's own listener
 * serves it at a path named after its digest, so a new key gets a new URL.
 *
 * Thread safety: the signer is read-only after sb__sns_signer_open(); EVP signing with a
 * shared EVP_PKEY is thread-safe in OpenSSL 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "core/codec.h"
#include "protocols/sns/sns_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

#define SNS_SIGN_RSA_BITS 2048
#define SNS_SIGN_CERT_DAYS 3650
#define SNS_SIGN_FILE "sns-signing.pem"

struct sns_signer {
  EVP_PKEY *key;                     /* owned */
  char *cert_pem;                    /* the certificate, PEM; owned */
  size_t cert_len;                   /* bytes of cert_pem */
  char cert_path[SNS_CERT_PATH_MAX]; /* where the listener serves it */
};

static int generate(EVP_PKEY **key, X509 **cert) {
  *key = EVP_RSA_gen(SNS_SIGN_RSA_BITS);
  *cert = X509_new();
  if (!*key || !*cert) return SB_ENOMEM;
  X509_set_version(*cert, 2);
  unsigned char serial[8];
  FILE *ur = fopen("/dev/urandom", "rb");
  size_t got = ur ? fread(serial, 1, sizeof serial, ur) : 0;
  if (ur) fclose(ur);
  uint64_t sn = 0;
  for (size_t i = 0; i < got; i++)
    sn = sn << 8 | serial[i];
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(*cert), sn >> 1);
  X509_gmtime_adj(X509_getm_notBefore(*cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(*cert), (long)SNS_SIGN_CERT_DAYS * 86400);
  X509_set_pubkey(*cert, *key);
  X509_NAME *n = X509_get_subject_name(*cert);
  X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"switchboard", -1, -1, 0);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             (const unsigned char *)"switchboard SNS message signing", -1, -1, 0);
  X509_set_issuer_name(*cert, n);
  return X509_sign(*cert, *key, EVP_sha256()) > 0 ? 0 : SB_ETLS;
}

/* Writes key and cert to path, only if it does not exist yet (another server may race). */
static int save(const char *path, EVP_PKEY *key, X509 *cert) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  FILE *f = fdopen(fd, "w");
  if (!f) {
    int e = -errno;
    close(fd);
    unlink(path);
    return e;
  }
  int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) && PEM_write_X509(f, cert);
  ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
  fclose(f);
  if (!ok) {
    unlink(path);
    return SB_EIO;
  }
  return 0;
}

static int load(const char *path, EVP_PKEY **key, X509 **cert) {
  FILE *f = fopen(path, "r");
  if (!f) return -errno;
  *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  rewind(f);
  *cert = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  if (!*key || !*cert) return SB_EINVAL;
  if (EVP_PKEY_get_base_id(*key) != EVP_PKEY_RSA || X509_check_private_key(*cert, *key) != 1)
    return SB_EINVAL;
  return 0;
}

int sb__sns_signer_open(const char *key_file, const char *data_dir, sns_signer_t **out) {
  EVP_PKEY *key = NULL;
  X509 *cert = NULL;
  char path[4096];
  int rc = 0;
  if (key_file) {
    rc = load(key_file, &key, &cert);
    snprintf(path, sizeof path, "%s", key_file);
  } else if (data_dir) {
    snprintf(path, sizeof path, "%s/%s", data_dir, SNS_SIGN_FILE);
    rc = load(path, &key, &cert);
    if (rc == -ENOENT) {
      EVP_PKEY_free(key);
      X509_free(cert);
      key = NULL;
      cert = NULL;
      rc = generate(&key, &cert);
      if (!rc) rc = save(path, key, cert);
      if (rc == -EEXIST) { /* written meanwhile: use that one */
        EVP_PKEY_free(key);
        X509_free(cert);
        key = NULL;
        cert = NULL;
        rc = load(path, &key, &cert);
      }
      if (!rc) sb_log(SB_LOG_INFO, "sns_signing_key_created", "path=\"%s\"", path);
    }
  } else {
    snprintf(path, sizeof path, "(memory)");
    rc = generate(&key, &cert);
  }
  sns_signer_t *s = rc ? NULL : calloc(1, sizeof *s);
  BIO *b = s ? BIO_new(BIO_s_mem()) : NULL;
  if (!rc && (!s || !b || !PEM_write_bio_X509(b, cert))) rc = SB_ENOMEM;
  if (!rc) {
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    s->cert_pem = malloc((size_t)n);
    if (!s->cert_pem) {
      rc = SB_ENOMEM;
    } else {
      memcpy(s->cert_pem, p, (size_t)n);
      s->cert_len = (size_t)n;
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int ml = 0;
      X509_digest(cert, EVP_sha256(), md, &ml);
      int o = snprintf(s->cert_path, sizeof s->cert_path, "/SimpleNotificationService-");
      for (unsigned i = 0; i < 16 && i < ml; i++)
        o += snprintf(s->cert_path + o, sizeof s->cert_path - (size_t)o, "%02x", md[i]);
      snprintf(s->cert_path + o, sizeof s->cert_path - (size_t)o, ".pem");
      s->key = key;
      key = NULL;
    }
  }
  BIO_free(b);
  X509_free(cert);
  EVP_PKEY_free(key);
  if (rc) {
    sb_log(SB_LOG_ERROR, "sns_signing_key_failed", "path=\"%s\" error=\"%s\"", path,
           sb_strerror(rc));
    if (s) free(s->cert_pem);
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void sb__sns_signer_free(sns_signer_t *s) {
  if (!s) return;
  EVP_PKEY_free(s->key);
  free(s->cert_pem);
  free(s);
}

const char *sb__sns_signer_cert_path(const sns_signer_t *s) {
  return s->cert_path;
}

const char *sb__sns_signer_cert(const sns_signer_t *s, size_t *len) {
  *len = s->cert_len;
  return s->cert_pem;
}

/* Appends "name\nvalue\n" when value is present. */
static int field(sb_buf_t *b, const char *name, const char *v, size_t n) {
  if (!v) return 0;
  if (sb_buf_append(b, name, strlen(name)) || sb_buf_append(b, "\n", 1) || sb_buf_append(b, v, n) ||
      sb_buf_append(b, "\n", 1))
    return SB_ENOMEM;
  return 0;
}

int sb__sns_string_to_sign(const sns_envelope_t *e, sb_buf_t *out) {
  int rc = 0;
  int notification = strcmp(e->type, "Notification") == 0;
  rc = rc ? rc : field(out, "Message", e->message, e->message_len);
  rc = rc ? rc : field(out, "MessageId", e->message_id, e->message_id ? strlen(e->message_id) : 0);
  if (notification) {
    rc = rc ? rc : field(out, "Subject", e->subject, e->subject ? strlen(e->subject) : 0);
  } else {
    rc = rc ? rc
            : field(out, "SubscribeURL", e->subscribe_url,
                    e->subscribe_url ? strlen(e->subscribe_url) : 0);
  }
  rc = rc ? rc : field(out, "Timestamp", e->timestamp, e->timestamp ? strlen(e->timestamp) : 0);
  if (!notification) rc = rc ? rc : field(out, "Token", e->token, e->token ? strlen(e->token) : 0);
  rc = rc ? rc : field(out, "TopicArn", e->topic_arn, e->topic_arn ? strlen(e->topic_arn) : 0);
  rc = rc ? rc : field(out, "Type", e->type, strlen(e->type));
  return rc;
}

int sb__sns_sign(const sns_signer_t *s, int version, const void *data, size_t len, char *out,
                 size_t cap) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return SB_ENOMEM;
  unsigned char sig[SNS_SIGN_RSA_BITS / 8 * 2];
  size_t sl = sizeof sig;
  int ok =
      EVP_DigestSignInit(ctx, NULL, version == 2 ? EVP_sha256() : EVP_sha1(), NULL, s->key) == 1 &&
      EVP_DigestSign(ctx, sig, &sl, data, len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return SB_ETLS;
  if ((sl + 2) / 3 * 4 + 1 > cap) return SB_ELIMIT;
  size_t n = sb_base64_encode(sig, sl, out);
  out[n] = 0;
  return 0;
}
