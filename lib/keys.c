/*
 * keys.c - department identity keys: generation, key files, hex, and the
 * CurveZMQ keys derived from them.
 *
 * A department has one Ed25519 key. It signs envelopes and records, and its
 * Curve25519 form (the birational map libsodium provides) is the CurveZMQ
 * key of the department's connection, so an operator handles one key file
 * per department instead of two that could drift apart.
 *
 * Key files are one line of 64 lowercase hex digits and a newline. The
 * secret file holds the 32-byte seed, not libsodium's 64-byte secret key:
 * the seed is the whole secret, and the rest is recomputed on load. Text was
 * chosen over raw bytes so that an operator can compare a public key file
 * with what `oncectl dept list` prints.
 *
 * The secret file is created with O_EXCL and mode 0600 and never
 * overwritten: replacing a department's key by accident would lock it out of
 * the broker. Loading refuses a secret file that group or others may read,
 * as ssh does, because such a key must be assumed copied. The mode is read
 * with fstat on the descriptor being read, so the file cannot be swapped
 * between the check and the read.
 *
 * Every buffer that held secret material is wiped with sodium_memzero before
 * it goes out of scope, including the hex text read from the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "file_io.h"
#include "once/once.h"

#define KEY_HEX_CHARS 64
/* A key file is the hex line and a newline; anything longer is not one. */
#define KEY_FILE_MAX (KEY_HEX_CHARS + 1)

int once_keypair_generate(once_keypair *kp)
{
    if (kp == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    if (crypto_sign_keypair(kp->public_key, kp->secret_key) != 0)
        return -ONCE_ERR_CRYPTO;
    return 0;
}

int once_keypair_from_seed(once_keypair *kp, const uint8_t seed[32])
{
    if (kp == NULL || seed == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    if (crypto_sign_seed_keypair(kp->public_key, kp->secret_key, seed) != 0)
        return -ONCE_ERR_CRYPTO;
    return 0;
}

void once_keypair_wipe(once_keypair *kp)
{
    if (kp != NULL)
        sodium_memzero(kp->secret_key, sizeof(kp->secret_key));
}

void once_hex_encode(char *out, const uint8_t *in, size_t len)
{
    /* sodium_bin2hex runs in constant time, which matters for secrets. */
    sodium_bin2hex(out, 2 * len + 1, in, len);
}

int once_hex_decode(uint8_t *out, size_t len, const char *hex)
{
    size_t decoded = 0;

    if (out == NULL || hex == NULL || strlen(hex) != 2 * len)
        return -ONCE_ERR_INVALID_ARGUMENT;
    /* Without an ignore set or an end pointer, sodium_hex2bin fails unless
     * every character is a hex digit; it also runs in constant time. */
    if (sodium_hex2bin(out, len, hex, 2 * len, NULL, &decoded, NULL) != 0 ||
        decoded != len)
        return -ONCE_ERR_INVALID_ARGUMENT;
    return 0;
}

/* Creates path with mode, writes the 32 bytes as a hex line and fsyncs.
 * Never replaces an existing file, nor writes through a planted link
 * (file_create_new: O_EXCL | O_NOFOLLOW). */
static int write_key_file(const char *path, const uint8_t key[32], mode_t mode,
                          const char *what, once_error *err)
{
    char line[KEY_FILE_MAX + 1];
    int rc;

    once_hex_encode(line, key, 32);
    line[KEY_HEX_CHARS] = '\n';
    line[KEY_HEX_CHARS + 1] = '\0';
    rc = file_create_new(path, line, KEY_FILE_MAX, mode);
    sodium_memzero(line, sizeof(line));
    if (rc == -EEXIST)
        return once_error_set(err, ONCE_ERR_EXISTS,
                              "%s %s already exists; refusing to "
                              "overwrite it", what, path);
    if (rc < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot create %s %s: %s",
                              what, path, strerror(-rc));
    return 0;
}

int once_keypair_save(const once_keypair *kp, const char *secret_path,
                      const char *public_path, once_error *err)
{
    int rc;

    if (kp == NULL || secret_path == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a key pair and a secret key path are required");
    /* The first 32 bytes of libsodium's secret key are the seed. */
    rc = write_key_file(secret_path, kp->secret_key, 0600, "secret key file",
                        err);
    if (rc < 0)
        return rc;
    if (public_path != NULL) {
        rc = write_key_file(public_path, kp->public_key, 0644,
                            "public key file", err);
        if (rc < 0) {
            /* Leave no half-made key behind: the operator reruns keygen. */
            unlink(secret_path);
            return rc;
        }
    }
    return 0;
}

/* Reads a key file into out (32 bytes). With secret set, refuses a file
 * that group or others may access, and wipes what it read. */
static int read_key_file(uint8_t out[32], const char *path, int secret,
                         once_error *err)
{
    const char *what = secret ? "secret key file" : "public key file";
    char text[KEY_FILE_MAX + 2];
    size_t len = 0;
    struct stat st;
    int fd, rc = 0;

    if (path == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a key file path is required");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot open %s %s: %s", what,
                              path, strerror(errno));
    if (fstat(fd, &st) < 0) {
        rc = once_error_set(err, ONCE_ERR_IO, "cannot stat %s %s: %s", what,
                            path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = once_error_set(err, ONCE_ERR_BAD_KEY_FILE,
                            "%s %s is not a regular file", what, path);
        goto out;
    }
    if (secret && (st.st_mode & 077) != 0) {
        rc = once_error_set(err, ONCE_ERR_BAD_KEY_FILE,
                            "secret key file %s has mode %04o: group or "
                            "others may access it; run chmod 600 on it, and "
                            "consider the key disclosed if others could "
                            "read it", path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    /* Read one byte past the largest valid file to see that it ends. */
    while (len < sizeof(text) - 1) {
        ssize_t n = read(fd, text + len, sizeof(text) - 1 - len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = once_error_set(err, ONCE_ERR_IO, "cannot read %s %s: %s",
                                what, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len == KEY_FILE_MAX && text[KEY_HEX_CHARS] == '\n')
        len = KEY_HEX_CHARS;
    text[len] = '\0';
    if (len != KEY_HEX_CHARS || once_hex_decode(out, 32, text) < 0)
        rc = once_error_set(err, ONCE_ERR_BAD_KEY_FILE,
                            "%s %s is not one line of %d hex digits", what,
                            path, KEY_HEX_CHARS);
out:
    sodium_memzero(text, sizeof(text));
    close(fd);
    return rc;
}

int once_keypair_load(once_keypair *kp, const char *secret_path,
                      once_error *err)
{
    uint8_t seed[32];
    int rc;

    if (kp == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a key pair is required");
    rc = read_key_file(seed, secret_path, 1, err);
    if (rc == 0 && once_keypair_from_seed(kp, seed) < 0)
        rc = once_error_set(err, ONCE_ERR_CRYPTO,
                            "cannot derive a key pair from %s", secret_path);
    sodium_memzero(seed, sizeof(seed));
    return rc;
}

int once_public_key_load(uint8_t pk[ONCE_PUBLIC_KEY_BYTES], const char *path,
                         once_error *err)
{
    uint8_t curve[crypto_scalarmult_curve25519_BYTES];
    int rc;

    if (pk == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "an output buffer is required");
    rc = read_key_file(pk, path, 0, err);
    if (rc < 0)
        return rc;
    /* Refuse here what would otherwise fail later, at CURVE set-up or at
     * the first signature check, with a less helpful message. */
    if (crypto_sign_ed25519_pk_to_curve25519(curve, pk) != 0)
        return once_error_set(err, ONCE_ERR_BAD_KEY_FILE,
                              "public key file %s does not hold a valid "
                              "Ed25519 public key", path);
    return 0;
}

int once_curve_public_z85(char out[41], const uint8_t ed_pk[32])
{
    uint8_t curve_pk[crypto_scalarmult_curve25519_BYTES];

    if (out == NULL || ed_pk == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    if (crypto_sign_ed25519_pk_to_curve25519(curve_pk, ed_pk) != 0)
        return -ONCE_ERR_CRYPTO;
    if (zmq_z85_encode(out, curve_pk, sizeof(curve_pk)) == NULL)
        return -ONCE_ERR_CRYPTO;
    return 0;
}

int once_curve_secret_z85(char out[41], const once_keypair *kp)
{
    uint8_t curve_sk[crypto_scalarmult_curve25519_BYTES];
    int rc = 0;

    if (out == NULL || kp == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    if (crypto_sign_ed25519_sk_to_curve25519(curve_sk, kp->secret_key) != 0 ||
        zmq_z85_encode(out, curve_sk, sizeof(curve_sk)) == NULL)
        rc = -ONCE_ERR_CRYPTO;
    sodium_memzero(curve_sk, sizeof(curve_sk));
    return rc;
}
