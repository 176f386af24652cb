/*
 * test_keys.c - key generation, key files, hex and the derived CurveZMQ
 * keys.
 *
 * Each test works in its own mkdtemp directory, removed afterwards. The
 * RFC 8032 test vector pins the seed-to-key derivation, so a key file
 * written by another implementation from the same seed loads to the same
 * key.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <zmq.h>

#include "once/once.h"
#include "temp_dir.h"

/* RFC 8032, section 7.1, TEST 1. */
static const char rfc8032_seed_hex[] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char rfc8032_public_hex[] =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

typedef struct fixture {
    char dir[PATH_MAX];
    char secret_path[PATH_MAX + 16];
    char public_path[PATH_MAX + 16];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    if (temp_dir_make(f->dir, sizeof(f->dir), "test-keys") < 0) {
        free(f);
        return -1;
    }
    snprintf(f->secret_path, sizeof(f->secret_path), "%s/dept.key", f->dir);
    snprintf(f->public_path, sizeof(f->public_path), "%s/dept.key.pub",
             f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    temp_dir_remove(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static size_t read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    n = read(fd, buf, size - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
    return (size_t)n;
}

static void seed_derives_rfc8032_key(void **state)
{
    uint8_t seed[32], expected_pk[32];
    once_keypair kp;

    (void)state;
    assert_int_equal(once_hex_decode(seed, 32, rfc8032_seed_hex), 0);
    assert_int_equal(once_hex_decode(expected_pk, 32, rfc8032_public_hex), 0);
    assert_int_equal(once_keypair_from_seed(&kp, seed), 0);
    assert_memory_equal(kp.public_key, expected_pk, 32);
    assert_memory_equal(kp.secret_key, seed, 32);
    assert_memory_equal(kp.secret_key + 32, expected_pk, 32);
}

static void save_load_round_trip(void **state)
{
    fixture *f = *state;
    once_keypair kp, loaded;
    uint8_t pk[32];
    char text[256], hex[65];
    struct stat st;
    once_error err;
    mode_t mask = umask(022);

    umask(mask);
    assert_int_equal(once_keypair_generate(&kp), 0);
    assert_int_equal(once_keypair_save(&kp, f->secret_path, f->public_path,
                                       &err), 0);

    assert_int_equal(stat(f->secret_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(f->public_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644 & ~mask);

    /* One line of 64 lowercase hex digits: the seed, and the public key. */
    assert_int_equal(read_file(f->secret_path, text, sizeof(text)), 65);
    once_hex_encode(hex, kp.secret_key, 32);
    assert_memory_equal(text, hex, 64);
    assert_int_equal(text[64], '\n');
    assert_int_equal(read_file(f->public_path, text, sizeof(text)), 65);
    once_hex_encode(hex, kp.public_key, 32);
    assert_memory_equal(text, hex, 64);

    memset(&loaded, 0xa5, sizeof(loaded));
    assert_int_equal(once_keypair_load(&loaded, f->secret_path, &err), 0);
    assert_memory_equal(loaded.public_key, kp.public_key, 32);
    assert_memory_equal(loaded.secret_key, kp.secret_key, 64);
    assert_int_equal(once_public_key_load(pk, f->public_path, &err), 0);
    assert_memory_equal(pk, kp.public_key, 32);
}

static void save_without_public_file(void **state)
{
    fixture *f = *state;
    once_keypair kp, loaded;
    once_error err;

    assert_int_equal(once_keypair_generate(&kp), 0);
    assert_int_equal(once_keypair_save(&kp, f->secret_path, NULL, &err), 0);
    assert_int_equal(access(f->public_path, F_OK), -1);
    assert_int_equal(once_keypair_load(&loaded, f->secret_path, &err), 0);
    assert_memory_equal(loaded.secret_key, kp.secret_key, 64);
}

static void save_refuses_to_overwrite(void **state)
{
    fixture *f = *state;
    once_keypair first, second, loaded;
    once_error err;

    assert_int_equal(once_keypair_generate(&first), 0);
    assert_int_equal(once_keypair_generate(&second), 0);
    assert_int_equal(once_keypair_save(&first, f->secret_path, f->public_path,
                                       &err), 0);
    assert_int_equal(once_keypair_save(&second, f->secret_path,
                                       f->public_path, &err),
                     -ONCE_ERR_EXISTS);
    assert_int_equal(err.code, ONCE_ERR_EXISTS);
    /* The first key is untouched. */
    assert_int_equal(once_keypair_load(&loaded, f->secret_path, &err), 0);
    assert_memory_equal(loaded.secret_key, first.secret_key, 64);
}

static void failed_public_file_removes_secret_file(void **state)
{
    fixture *f = *state;
    once_keypair kp;
    once_error err;

    write_file(f->public_path, "in the way\n", 0644);
    assert_int_equal(once_keypair_generate(&kp), 0);
    assert_int_equal(once_keypair_save(&kp, f->secret_path, f->public_path,
                                       &err), -ONCE_ERR_EXISTS);
    assert_int_equal(access(f->secret_path, F_OK), -1);
}

static void load_refuses_readable_secret_file(void **state)
{
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0601};
    fixture *f = *state;
    once_keypair kp;
    once_error err;
    size_t i;

    assert_int_equal(once_keypair_generate(&kp), 0);
    assert_int_equal(once_keypair_save(&kp, f->secret_path, NULL, &err), 0);
    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        assert_int_equal(chmod(f->secret_path, modes[i]), 0);
        assert_int_equal(once_keypair_load(&kp, f->secret_path, &err),
                         -ONCE_ERR_BAD_KEY_FILE);
        assert_int_equal(err.code, ONCE_ERR_BAD_KEY_FILE);
        assert_non_null(strstr(err.message, "chmod 600"));
    }
    assert_int_equal(chmod(f->secret_path, 0400), 0);
    assert_int_equal(once_keypair_load(&kp, f->secret_path, &err), 0);
}

static void load_refuses_bad_contents(void **state)
{
    static const char *const bad[] = {
        "",
        "\n",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f6\n",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f600\n",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f6g\n",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n\n",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60 \n",
        " 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "9d61b19deffd5a60ba844af492ec2cc4:4449c5697b326919703bac031cae7f60\n",
    };
    fixture *f = *state;
    once_keypair kp;
    uint8_t pk[32];
    once_error err;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(f->secret_path, bad[i], 0600);
        assert_int_equal(once_keypair_load(&kp, f->secret_path, &err),
                         -ONCE_ERR_BAD_KEY_FILE);
        assert_int_equal(once_public_key_load(pk, f->secret_path, &err),
                         -ONCE_ERR_BAD_KEY_FILE);
        /* The message names the file, never its contents. */
        assert_non_null(strstr(err.message, f->secret_path));
        assert_null(strstr(err.message, "9d61b1"));
    }
    /* The newline is optional. */
    write_file(f->secret_path, rfc8032_seed_hex, 0600);
    assert_int_equal(once_keypair_load(&kp, f->secret_path, &err), 0);
    assert_int_equal(once_hex_decode(pk, 32, rfc8032_public_hex), 0);
    assert_memory_equal(kp.public_key, pk, 32);
}

static void load_refuses_missing_file_and_directory(void **state)
{
    fixture *f = *state;
    once_keypair kp;
    once_error err;

    assert_int_equal(once_keypair_load(&kp, f->secret_path, &err),
                     -ONCE_ERR_IO);
    assert_int_equal(chmod(f->dir, 0700), 0);
    assert_int_equal(once_keypair_load(&kp, f->dir, &err),
                     -ONCE_ERR_BAD_KEY_FILE);
}

static void public_key_load_refuses_invalid_point(void **state)
{
    fixture *f = *state;
    uint8_t pk[32];
    once_error err;

    /* The identity point: 64 hex digits that decode, but a key of small
     * order that no CurveZMQ key can be derived from. */
    write_file(f->public_path,
               "0100000000000000000000000000000000000000000000000000000000"
               "000000\n", 0644);
    assert_int_equal(once_public_key_load(pk, f->public_path, &err),
                     -ONCE_ERR_BAD_KEY_FILE);
    write_file(f->public_path, rfc8032_public_hex, 0644);
    assert_int_equal(once_public_key_load(pk, f->public_path, &err), 0);
}

static void wipe_zeroes_the_secret(void **state)
{
    static const uint8_t zeros[ONCE_SECRET_KEY_BYTES];
    once_keypair kp;
    uint8_t pk[32];

    (void)state;
    assert_int_equal(once_keypair_generate(&kp), 0);
    memcpy(pk, kp.public_key, 32);
    assert_memory_not_equal(kp.secret_key, zeros, sizeof(zeros));
    once_keypair_wipe(&kp);
    assert_memory_equal(kp.secret_key, zeros, sizeof(zeros));
    assert_memory_equal(kp.public_key, pk, 32);
}

static void hex_round_trip_and_refusals(void **state)
{
    static const uint8_t bytes[4] = {0x00, 0x9f, 0xa0, 0xff};
    uint8_t out[4];
    char hex[9];

    (void)state;
    once_hex_encode(hex, bytes, 4);
    assert_string_equal(hex, "009fa0ff");
    assert_int_equal(once_hex_decode(out, 4, hex), 0);
    assert_memory_equal(out, bytes, 4);
    assert_int_equal(once_hex_decode(out, 4, "009FA0FF"), 0);
    assert_memory_equal(out, bytes, 4);
    assert_int_equal(once_hex_decode(out, 4, "009fa0f"),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_hex_decode(out, 4, "009fa0fff0"),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_hex_decode(out, 4, "009fa0fg"),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_hex_decode(out, 4, "00:fa0ff"),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_hex_decode(out, 4, NULL),
                     -ONCE_ERR_INVALID_ARGUMENT);
}

static void curve_keys_are_a_pair(void **state)
{
    char curve_public[41], curve_secret[41], derived_public[41];
    once_keypair kp;

    (void)state;
    assert_int_equal(once_keypair_generate(&kp), 0);
    assert_int_equal(once_curve_public_z85(curve_public, kp.public_key), 0);
    assert_int_equal(once_curve_secret_z85(curve_secret, &kp), 0);
    assert_int_equal(strlen(curve_public), 40);
    assert_int_equal(strlen(curve_secret), 40);
    /* libzmq derives the public CurveZMQ key from the secret one: it must
     * be the one derived from the Ed25519 public key. */
    assert_int_equal(zmq_curve_public(derived_public, curve_secret), 0);
    assert_string_equal(derived_public, curve_public);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seed_derives_rfc8032_key),
        cmocka_unit_test_setup_teardown(save_load_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(save_without_public_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(save_refuses_to_overwrite, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(failed_public_file_removes_secret_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(load_refuses_readable_secret_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(load_refuses_bad_contents, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(load_refuses_missing_file_and_directory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(public_key_load_refuses_invalid_point,
                                        setup, teardown),
        cmocka_unit_test(wipe_zeroes_the_secret),
        cmocka_unit_test(hex_round_trip_and_refusals),
        cmocka_unit_test(curve_keys_are_a_pair),
    };

    if (once_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
