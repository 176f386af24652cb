/*
 * test_merkle.c - the RFC 9162 tree against the public RFC 6962 test
 * vectors, and every proof among them, whole and damaged; and the SHA-256
 * of digest.c (envelope and header digests) against the FIPS 180-2
 * vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "digest.h"
#include "merkle.h"
#include "once/once.h"

static const char *const leaf_hex[8] = {
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f"};

static const char *const root_hex[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

static merkle_hash leaves[8];
static merkle_hash roots[9];

static int setup_vectors(void **state)
{
    uint8_t data[16];
    size_t i, len;

    (void)state;
    if (sodium_init() < 0)
        return -1;
    for (i = 0; i < 8; i++) {
        len = strlen(leaf_hex[i]) / 2;
        if (len > 0 && once_hex_decode(data, len, leaf_hex[i]) < 0)
            return -1;
        merkle_leaf_hash(data, len, leaves[i]);
    }
    for (i = 0; i <= 8; i++)
        merkle_root(leaves, i, roots[i]);
    return 0;
}

static void test_roots_match_rfc6962(void **state)
{
    merkle_hash expected;
    size_t n;

    (void)state;
    for (n = 1; n <= 8; n++) {
        assert_int_equal(once_hex_decode(expected, 32, root_hex[n - 1]), 0);
        assert_memory_equal(roots[n], expected, 32);
    }
}

static void test_empty_tree_root(void **state)
{
    merkle_hash empty;

    (void)state;
    crypto_hash_sha256(empty, NULL, 0);
    assert_memory_equal(roots[0], empty, 32);
}

static void test_every_inclusion_proof_verifies(void **state)
{
    merkle_hash proof[64];
    size_t len;
    uint64_t n, i;

    (void)state;
    for (n = 1; n <= 8; n++)
        for (i = 0; i < n; i++) {
            assert_int_equal(merkle_inclusion_proof(leaves, n, i, proof, &len),
                             0);
            assert_int_equal(merkle_verify_inclusion(i, n, leaves[i], proof,
                                                     len, roots[n]),
                             0);
        }
}

static void test_damaged_inclusion_proofs_fail(void **state)
{
    merkle_hash proof[65];
    size_t len, j;
    uint64_t n, i;

    (void)state;
    for (n = 1; n <= 8; n++)
        for (i = 0; i < n; i++) {
            merkle_inclusion_proof(leaves, n, i, proof, &len);
            for (j = 0; j < len; j++) {
                proof[j][j % 32] ^= 0x01;
                assert_int_not_equal(merkle_verify_inclusion(
                                         i, n, leaves[i], proof, len, roots[n]),
                                     0);
                proof[j][j % 32] ^= 0x01;
            }
            /* an extra hash, a missing hash */
            memcpy(proof[len], roots[n], 32);
            assert_int_not_equal(merkle_verify_inclusion(i, n, leaves[i], proof,
                                                         len + 1, roots[n]),
                                 0);
            if (len > 0)
                assert_int_not_equal(merkle_verify_inclusion(
                                         i, n, leaves[i], proof, len - 1,
                                         roots[n]),
                                     0);
            /* wrong leaf, index past the end, wrong size */
            assert_int_not_equal(merkle_verify_inclusion(i, n, leaves[(i + 1) % 8],
                                                         proof, len, roots[n]),
                                 0);
            assert_int_not_equal(merkle_verify_inclusion(n, n, leaves[i], proof,
                                                         len, roots[n]),
                                 0);
            if (n > 1)
                assert_int_not_equal(merkle_verify_inclusion(
                                         i ^ 1, n, leaves[i], proof, len,
                                         roots[n]),
                                     0);
            /* the proof of another tree: a root alone does not bind the
             * size (a checkpoint signs both), but the next tree's root
             * does not verify with this proof */
            if (n < 8)
                assert_int_not_equal(merkle_verify_inclusion(
                                         i, n + 1, leaves[i], proof, len,
                                         roots[n + 1]),
                                     0);
        }
}

static void test_every_consistency_proof_verifies(void **state)
{
    merkle_hash proof[64];
    size_t len;
    uint64_t m, n;

    (void)state;
    for (n = 1; n <= 8; n++)
        for (m = 1; m <= n; m++) {
            assert_int_equal(merkle_consistency_proof(leaves, m, n, proof,
                                                      &len),
                             0);
            assert_int_equal(merkle_verify_consistency(m, n, roots[m],
                                                       roots[n], proof, len),
                             0);
        }
}

static void test_damaged_consistency_proofs_fail(void **state)
{
    merkle_hash proof[65];
    size_t len, j;
    uint64_t m, n;

    (void)state;
    for (n = 2; n <= 8; n++)
        for (m = 1; m < n; m++) {
            merkle_consistency_proof(leaves, m, n, proof, &len);
            for (j = 0; j < len; j++) {
                proof[j][31 - j % 32] ^= 0x80;
                assert_int_not_equal(merkle_verify_consistency(
                                         m, n, roots[m], roots[n], proof, len),
                                     0);
                proof[j][31 - j % 32] ^= 0x80;
            }
            memcpy(proof[len], roots[m], 32);
            assert_int_not_equal(merkle_verify_consistency(m, n, roots[m],
                                                           roots[n], proof,
                                                           len + 1),
                                 0);
            assert_int_not_equal(merkle_verify_consistency(m, n, roots[m],
                                                           roots[n], proof,
                                                           len - 1),
                                 0);
            /* swapped sizes and roots: first > second */
            assert_int_not_equal(merkle_verify_consistency(n, m, roots[n],
                                                           roots[m], proof,
                                                           len),
                                 0);
            /* a wrong old root */
            assert_int_not_equal(merkle_verify_consistency(m, n, roots[m - 1],
                                                           roots[n], proof,
                                                           len),
                                 0);
        }
}

static void test_consistency_edge_cases(void **state)
{
    merkle_hash proof[1];

    (void)state;
    memcpy(proof[0], roots[3], 32);
    /* equal sizes: only an empty proof and equal roots */
    assert_int_equal(merkle_verify_consistency(5, 5, roots[5], roots[5], NULL,
                                               0),
                     0);
    assert_int_not_equal(merkle_verify_consistency(5, 5, roots[5], roots[5],
                                                   proof, 1),
                         0);
    assert_int_not_equal(merkle_verify_consistency(5, 5, roots[5], roots[4],
                                                   NULL, 0),
                         0);
    /* size 0 is consistent with anything, with an empty proof */
    assert_int_equal(merkle_verify_consistency(0, 7, roots[0], roots[7], NULL,
                                               0),
                     0);
    assert_int_not_equal(merkle_verify_consistency(0, 7, roots[0], roots[7],
                                                   proof, 1),
                         0);
    /* growth with no proof at all */
    assert_int_not_equal(merkle_verify_consistency(3, 7, roots[3], roots[7],
                                                   NULL, 0),
                         0);
    assert_int_not_equal(merkle_consistency_proof(leaves, 0, 4, proof,
                                                  &(size_t){0}),
                         0);
}

static void expect_digest(const void *data, size_t len, const char *hex)
{
    uint8_t got[DIGEST_SHA256_BYTES], expected[DIGEST_SHA256_BYTES];

    assert_int_equal(once_hex_decode(expected, sizeof(expected), hex), 0);
    digest_sha256(got, data, len);
    assert_memory_equal(got, expected, sizeof(expected));
}

/* FIPS 180-2 appendix B, and the empty string. */
static void test_digest_fips180_vectors(void **state)
{
    static const char two_blocks[] =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    size_t million = 1000000;
    char *a = malloc(million);

    (void)state;
    assert_non_null(a);
    expect_digest("", 0,
                  "e3b0c44298fc1c149afbf4c8996fb924"
                  "27ae41e4649b934ca495991b7852b855");
    expect_digest("abc", 3,
                  "ba7816bf8f01cfea414140de5dae2223"
                  "b00361a396177a9cb410ff61f20015ad");
    expect_digest(two_blocks, sizeof(two_blocks) - 1,
                  "248d6a61d20638b8e5c026930c3e6039"
                  "a33ce45964ff2167f6ecedd419db06c1");
    memset(a, 'a', million);
    expect_digest(a, million,
                  "cdc76e5c9914fb9281a1c7e284d73e67"
                  "f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

/* A cross-check only: every length across the padding boundaries of two
 * blocks (55/56 and 119/120 bytes) agrees with libsodium's SHA-256. */
static void test_digest_agrees_with_libsodium(void **state)
{
    uint8_t data[130], got[32], expected[32];
    size_t len;

    (void)state;
    for (len = 0; len < sizeof(data); len++)
        data[len] = (uint8_t)(len * 7 + 1);
    for (len = 0; len <= sizeof(data); len++) {
        digest_sha256(got, data, len);
        crypto_hash_sha256(expected, data, len);
        assert_memory_equal(got, expected, 32);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roots_match_rfc6962),
        cmocka_unit_test(test_empty_tree_root),
        cmocka_unit_test(test_every_inclusion_proof_verifies),
        cmocka_unit_test(test_damaged_inclusion_proofs_fail),
        cmocka_unit_test(test_every_consistency_proof_verifies),
        cmocka_unit_test(test_damaged_consistency_proofs_fail),
        cmocka_unit_test(test_consistency_edge_cases),
        cmocka_unit_test(test_digest_fips180_vectors),
        cmocka_unit_test(test_digest_agrees_with_libsodium),
    };
    return cmocka_run_group_tests(tests, setup_vectors, NULL);
}
