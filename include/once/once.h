/*
 * once.h - the public API of libonce, the library department systems link
 * to take part in the once data-sharing exchange.
 *
 * The API follows libsodium's habits: a handful of plain types, functions
 * that return 0 on success or a negative error code, and no hidden global
 * state beyond once_init(). Every function that can fail for a reason a
 * caller should read takes an optional `once_error *` (NULL is allowed) that
 * receives the stable error code and a readable message.
 *
 * Four parts:
 *   keys      Ed25519 identity keys: generate, save (0600), load, wipe.
 *   subjects  validation of the Unified Social Credit Code (GB 32100) and
 *             the resident identity number (GB 11643).
 *   records   issuer-signed records with salted field digests, so that a
 *             requester receives only its granted fields and still verifies
 *             the issuer's signature (selective disclosure, as in SD-JWT).
 *   client    a CURVE-encrypted connection to the broker: publish, revoke,
 *             request, ping, with timeouts and safe retries (also of
 *             envelopes kept by the caller), and the broker's signed
 *             directory of departments, keys, types and grants.
 *
 * Byte formats are specified in docs/PROTOCOL.md.
 */
#ifndef ONCE_ONCE_H
#define ONCE_ONCE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Errors
 *
 * Codes 1..99 are the wire's ErrorCode values (proto/once.proto) and are
 * stable. Codes from 100 are local to the library. Functions return the
 * negated code.
 * ------------------------------------------------------------------------- */

enum once_error_code {
    ONCE_OK = 0,
    ONCE_ERR_MALFORMED = 1,
    ONCE_ERR_BAD_SIGNATURE = 2,
    ONCE_ERR_UNKNOWN_SENDER = 3,
    ONCE_ERR_SENDER_MISMATCH = 4,
    ONCE_ERR_REPLAY = 5,
    ONCE_ERR_CLOCK_SKEW = 6,
    ONCE_ERR_NOT_ISSUER = 7,
    ONCE_ERR_NO_GRANT = 8,
    ONCE_ERR_MISSING_PURPOSE = 9,
    ONCE_ERR_INVALID_SUBJECT = 10,
    ONCE_ERR_UNKNOWN_TYPE = 11,
    ONCE_ERR_TOO_LARGE = 12,
    ONCE_ERR_SUSPENDED = 13,
    ONCE_ERR_NOT_FOUND = 14,
    ONCE_ERR_INVALID_RECORD = 15,
    ONCE_ERR_STALE_VERSION = 16,
    ONCE_ERR_UNSUPPORTED = 17,
    ONCE_ERR_INTERNAL = 18,
    ONCE_ERR_STORAGE_FULL = 19,
    ONCE_ERR_UNAVAILABLE = 20,
    ONCE_ERR_INVALID_TEXT = 21,
    ONCE_ERR_QUOTA_EXCEEDED = 22,

    ONCE_ERR_INVALID_ARGUMENT = 100,
    ONCE_ERR_NO_MEMORY = 101,
    ONCE_ERR_IO = 102,
    ONCE_ERR_TIMEOUT = 103,
    ONCE_ERR_CONNECT = 104,
    ONCE_ERR_CRYPTO = 105,
    ONCE_ERR_BAD_KEY_FILE = 106,
    ONCE_ERR_EXISTS = 107,
    ONCE_ERR_TOO_MANY_IN_FLIGHT = 108
};

#define ONCE_ERROR_MESSAGE_MAX 256

typedef struct once_error {
    int code;                              /* enum once_error_code */
    char message[ONCE_ERROR_MESSAGE_MAX];  /* never holds secrets or raw IDs */
} once_error;

/* Stable upper-case name of a code, e.g. "NO_GRANT"; "UNKNOWN" otherwise. */
const char *once_error_name(int code);

/* Sets err (if not NULL) and returns -code. For the library and its tools. */
int once_error_set(once_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Call once before anything else; safe to call again. Returns 0 or -1. */
int once_init(void);

/* ---------------------------------------------------------------------------
 * Keys
 *
 * One Ed25519 key per department; its CurveZMQ key is derived from it.
 * File format: one line of 64 lowercase hex digits (the 32-byte seed for a
 * secret key file, the public key for a public key file). Secret key files
 * are created with mode 0600 and refused when group or others can read them.
 * ------------------------------------------------------------------------- */

#define ONCE_PUBLIC_KEY_BYTES 32
#define ONCE_SECRET_KEY_BYTES 64
#define ONCE_SIGNATURE_BYTES 64
#define ONCE_DIGEST_BYTES 32

typedef struct once_keypair {
    uint8_t public_key[ONCE_PUBLIC_KEY_BYTES];
    uint8_t secret_key[ONCE_SECRET_KEY_BYTES]; /* libsodium layout: seed||pk */
} once_keypair;

int once_keypair_generate(once_keypair *kp);
int once_keypair_from_seed(once_keypair *kp, const uint8_t seed[32]);
/* Writes secret_path (0600, O_EXCL) and, if public_path is not NULL, the
 * public key file (0644). Refuses to overwrite. */
int once_keypair_save(const once_keypair *kp, const char *secret_path,
                      const char *public_path, once_error *err);
int once_keypair_load(once_keypair *kp, const char *secret_path,
                      once_error *err);
int once_public_key_load(uint8_t pk[ONCE_PUBLIC_KEY_BYTES], const char *path,
                         once_error *err);
/* Overwrites the secret half with zeros. */
void once_keypair_wipe(once_keypair *kp);

/* Hex: out must hold 2*len+1 bytes. from_hex returns 0 only for exactly
 * 2*len hex digits. */
void once_hex_encode(char *out, const uint8_t *in, size_t len);
int once_hex_decode(uint8_t *out, size_t len, const char *hex);

/* Curve25519 keys for CurveZMQ, derived from the Ed25519 key (Z85 text, 41
 * bytes with the NUL). */
int once_curve_public_z85(char out[41], const uint8_t ed_pk[32]);
int once_curve_secret_z85(char out[41], const once_keypair *kp);

/* ---------------------------------------------------------------------------
 * Subjects
 * ------------------------------------------------------------------------- */

typedef enum once_subject_kind {
    ONCE_SUBJECT_UNSPECIFIED = 0,
    ONCE_SUBJECT_ENTERPRISE = 1, /* Unified Social Credit Code, GB 32100 */
    ONCE_SUBJECT_PERSON = 2      /* resident identity number, GB 11643 */
} once_subject_kind;

/* 18 characters from 0-9 A-Z without I O S V Z; the last is the check
 * character computed with weights 3^i mod 31. Returns 0 or
 * -ONCE_ERR_INVALID_SUBJECT. */
int once_uscc_validate(const char *code, once_error *err);
/* Computes the check character for the first 17 characters. */
int once_uscc_check_char(const char *first17, char *check);

/* 17 digits then a digit or 'X' (ISO 7064 MOD 11-2), with a real birth date
 * at positions 7..14 not in the future. */
int once_resident_id_validate(const char *id, once_error *err);
int once_resident_id_check_char(const char *first17, char *check);

int once_subject_validate(once_subject_kind kind, const char *subject,
                          once_error *err);
/* "enterprise" / "person"; parse returns 0 or -ONCE_ERR_INVALID_ARGUMENT. */
const char *once_subject_kind_name(once_subject_kind kind);
int once_subject_kind_parse(const char *name, once_subject_kind *kind);

/* ---------------------------------------------------------------------------
 * Records and disclosures
 *
 * An issuer builds a record, adds fields, signs it. The signed header holds
 * SHA-256 digests of salted fields; the disclosures hold (salt, name,
 * value). once_record_disclose() makes a copy with only some disclosures,
 * which still verifies against the issuer's key.
 * ------------------------------------------------------------------------- */

typedef enum once_record_status {
    ONCE_STATUS_UNSPECIFIED = 0,
    ONCE_STATUS_VALID = 1,
    ONCE_STATUS_REVOKED = 2
} once_record_status;

#define ONCE_MAX_NAME 64          /* type, issuer, field names, dept ids */
#define ONCE_MAX_SUBJECT 64
#define ONCE_MAX_PURPOSE 256
#define ONCE_MAX_CASE_ID 128
#define ONCE_MAX_USER 128         /* a request's acting official */
#define ONCE_MAX_REASON 256       /* a revocation's reason */
#define ONCE_MAX_FIELDS 64
#define ONCE_MAX_FIELD_VALUE 65536
#define ONCE_MAX_MESSAGE (1024 * 1024)
#define ONCE_SALT_BYTES 16

typedef struct once_record once_record;

/* A new unsigned record with status VALID. Times are Unix milliseconds;
 * valid_until 0 means no end. */
int once_record_new(once_record **out, const char *type, const char *subject,
                    uint64_t version, const char *issuer, uint64_t valid_from,
                    uint64_t valid_until, once_error *err);
/* A new unsigned revocation: status REVOKED, no fields. */
int once_record_new_revocation(once_record **out, const char *type,
                               const char *subject, uint64_t version,
                               const char *issuer, once_error *err);
/* The same, with the issuer's reason signed into the header (PROTOCOL.md
 * 4.2): every requester of the record gets it with the revocation. reason
 * is required (-ONCE_ERR_INVALID_ARGUMENT when NULL or empty: for none,
 * call once_record_new_revocation), clean text (-ONCE_ERR_INVALID_TEXT) of
 * at most ONCE_MAX_REASON bytes (-ONCE_ERR_TOO_LARGE). */
int once_record_new_revocation_reason(once_record **out, const char *type,
                                      const char *subject, uint64_t version,
                                      const char *issuer, const char *reason,
                                      once_error *err);
int once_record_add_field(once_record *r, const char *name,
                          const uint8_t *value, size_t value_len,
                          once_error *err);
int once_record_add_text(once_record *r, const char *name, const char *value,
                         once_error *err);
/* Draws salts, serializes the header and signs it. After this the record is
 * immutable. */
int once_record_sign(once_record *r, const once_keypair *issuer,
                     once_error *err);
/* Copy holding the header, the signature and only the named disclosures.
 * Names absent from the record are ignored. */
int once_record_disclose(const once_record *r, const char *const *names,
                         size_t count, once_record **out, once_error *err);
/* Checks the issuer signature over the header and every disclosure against
 * its digest in the header. Returns 0, -ONCE_ERR_BAD_SIGNATURE or
 * -ONCE_ERR_INVALID_RECORD (a disclosure whose digest is not in the header,
 * a duplicate, a malformed header). */
int once_record_verify(const once_record *r,
                       const uint8_t issuer_pk[ONCE_PUBLIC_KEY_BYTES],
                       once_error *err);

const char *once_record_type(const once_record *r);
const char *once_record_subject(const once_record *r);
const char *once_record_issuer(const once_record *r);
uint64_t once_record_version(const once_record *r);
once_record_status once_record_status_of(const once_record *r);
/* A revocation's reason as its signed header gives it; "" when it gives
 * none (and for every valid record). Lives as long as r. */
const char *once_record_reason(const once_record *r);
uint64_t once_record_issued_at(const once_record *r);
uint64_t once_record_valid_from(const once_record *r);
uint64_t once_record_valid_until(const once_record *r);
/* Fields in the signed header (disclosed or not). */
size_t once_record_field_count(const once_record *r);
const char *once_record_field_name(const once_record *r, size_t i);
/* Disclosed value of a field: 0 with value and len set, or
 * -ONCE_ERR_NOT_FOUND when not disclosed. The pointer lives as long as r. */
int once_record_field_value(const once_record *r, const char *name,
                            const uint8_t **value, size_t *len);
size_t once_record_disclosure_count(const once_record *r);

/* Wire form: a serialized once.Publish message (signed record plus
 * disclosures). parse copies what it needs from buf; it refuses what the
 * broker refuses before decoding (PROTOCOL.md 2.1, 9.4): a field
 * once.proto does not define or a singular one twice (-ONCE_ERR_MALFORMED),
 * more than ONCE_MAX_FIELDS disclosures (-ONCE_ERR_TOO_LARGE), a name that
 * is not clean text (-ONCE_ERR_INVALID_TEXT). */
int once_record_serialize(const once_record *r, uint8_t **buf, size_t *len,
                          once_error *err);
int once_record_parse(once_record **out, const uint8_t *buf, size_t len,
                      once_error *err);
void once_record_free(once_record *r);

/* ---------------------------------------------------------------------------
 * Client
 *
 * One client is one DEALER socket with CURVE, used by one thread at a time.
 * Calls block until the answer arrives or the timeout (default 5000 ms)
 * expires. On a timeout the client re-sends the same signed envelope (same
 * session and seq) up to `retries` times (default 2): the broker answers a
 * repeated envelope with its original answer, so a retry never publishes
 * twice. A refusal is returned as -code with the broker's message in err.
 * ------------------------------------------------------------------------- */

typedef struct once_client once_client;

typedef struct once_client_options {
    int timeout_ms;  /* per attempt; 0 means the default 5000 */
    int retries;     /* extra attempts after a timeout; -1 means default 2 */
} once_client_options;

/* endpoint: a ZeroMQ endpoint such as "tcp://127.0.0.1:7700" or
 * "ipc:///run/once/broker.sock". The client keeps a copy of kp and wipes it
 * on close. */
int once_client_open(once_client **out, const char *endpoint,
                     const char *department_id, const once_keypair *kp,
                     const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
                     const once_client_options *options, once_error *err);
void once_client_close(once_client *c);

/* Publishes a signed record with all its disclosures. Returns once the
 * broker has made it durable. */
int once_client_publish(once_client *c, const once_record *r,
                        once_error *err);
/* Publishes a signed revocation (once_record_new_revocation). */
int once_client_revoke(once_client *c, const once_record *revocation,
                       once_error *err);
/* Requests the latest version (version 0) or a given version. type,
 * subject, purpose and case_id must be clean text (UTF-8 without control
 * characters, PROTOCOL.md 9.4), as must the department id given to
 * once_client_open: else -ONCE_ERR_INVALID_TEXT, and nothing is sent. On
 * success *out holds the issuer-signed record with the granted
 * disclosures; verify it with once_record_verify() and the issuer's public
 * key. A revoked record comes back as its signed revocation (status
 * REVOKED), not as an error. */
int once_client_request(once_client *c, const char *type, const char *subject,
                        const char *purpose, const char *case_id,
                        uint64_t version, once_record **out, once_error *err);
int once_client_ping(once_client *c, once_error *err);

/* The broker's exchange log, as its ping answer names it (PROTOCOL.md
 * 4.4): the origin its checkpoints carry and the Ed25519 key that signs
 * them, which is today the broker's own key. The answer comes over the
 * CURVE channel only the broker's key can terminate, so these are the
 * broker's word: pass them to once_receipt_verify. */
#define ONCE_MAX_LOG_ORIGIN 255

typedef struct once_log_info {
    char origin[ONCE_MAX_LOG_ORIGIN + 1];        /* NUL-terminated */
    uint8_t public_key[ONCE_PUBLIC_KEY_BYTES];
} once_log_info;

/* A ping that also fills info. -ONCE_ERR_MALFORMED when the answer does
 * not name a log (an origin as checkpoints have one, a 32-byte key). */
int once_client_ping_ex(once_client *c, once_log_info *info,
                        once_error *err);

/* ---------------------------------------------------------------------------
 * Receipts (docs/AUDIT.md section 4)
 *
 * Every publish, revoke and request, granted or refused, is a leaf of the
 * broker's signed exchange log, and its answer says where. The _ex calls
 * return that receipt; with want_proof the broker adds a signed checkpoint,
 * the inclusion proof of the leaf in it and the leaf bytes, which
 * once_receipt_verify checks offline with the broker's public key, so a
 * department keeps its own proof of what it did. A refusal fills the
 * receipt too (the call still returns -code); logged is 0 only when the
 * broker could not log the exchange (then nothing happened either).
 * ------------------------------------------------------------------------- */

typedef struct once_receipt {
    int logged;              /* leaf_index is valid */
    uint64_t leaf_index;
    int has_proof;           /* checkpoint, proof and leaf are filled */
    char *checkpoint;        /* C2SP signed note, NUL-terminated */
    size_t checkpoint_len;
    uint8_t (*proof)[32];    /* RFC 9162 inclusion proof, deepest first */
    size_t proof_len;
    uint8_t *leaf;           /* the serialized once.LogLeaf */
    size_t leaf_len;
    uint8_t envelope_digest[32]; /* SHA-256 of the envelope this client sent */
} once_receipt;

/* Like the calls above, and receipt (may be NULL; zeroed, or holding an
 * earlier receipt, which is released) is filled from the answer, granted
 * or refused. Release it with once_receipt_clear. */
int once_client_publish_ex(once_client *c, const once_record *r,
                           int want_proof, once_receipt *receipt,
                           once_error *err);
int once_client_revoke_ex(once_client *c, const once_record *revocation,
                          int want_proof, once_receipt *receipt,
                          once_error *err);
int once_client_request_ex(once_client *c, const char *type,
                           const char *subject, const char *purpose,
                           const char *case_id, uint64_t version,
                           int want_proof, once_record **out,
                           once_receipt *receipt, once_error *err);
/* once_client_request_ex on behalf of an official of the department
 * (PROTOCOL.md 4.3): user, 1 to ONCE_MAX_USER bytes of clean text (a staff
 * number, a login name), is signed into the request and written into its
 * log leaf, so that an access report names the official. NULL or "" is
 * -ONCE_ERR_INVALID_ARGUMENT (to name no one, call once_client_request_ex);
 * not clean text -ONCE_ERR_INVALID_TEXT, too long -ONCE_ERR_TOO_LARGE,
 * and nothing is sent. The user is an argument of the call, not a setting
 * of the client: a client shared by the calls of many officials (a
 * gateway's pool) cannot carry one official's name into another's
 * request. */
int once_client_request_as(once_client *c, const char *user,
                           const char *type, const char *subject,
                           const char *purpose, const char *case_id,
                           uint64_t version, int want_proof,
                           once_record **out, once_receipt *receipt,
                           once_error *err);

/* Checks a receipt with a proof: the checkpoint is signed by broker_pk
 * under origin (the log's name, the first line of its checkpoints; both
 * as once_client_ping_ex reports them, PROTOCOL.md 4.7); the
 * leaf is about the envelope this client sent; SHA-256(0x00 || leaf) with
 * the proof leads to the checkpoint's root at leaf_index. 0, or
 * -ONCE_ERR_BAD_SIGNATURE (checkpoint), -ONCE_ERR_INVALID_RECORD (leaf or
 * proof), -ONCE_ERR_INVALID_ARGUMENT (no proof). */
int once_receipt_verify(const once_receipt *receipt,
                        const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
                        const char *origin, once_error *err);

/* Frees what a receipt holds and zeroes it; safe on a zeroed receipt. */
void once_receipt_clear(once_receipt *receipt);

/* ---------------------------------------------------------------------------
 * Pipelined requests (docs/PROTOCOL.md 1 and 2.3)
 *
 * once_client_request_ex waits for its answer before the next request can
 * be sent. A program that asks for many records at once (a gateway serving
 * many callers) sends several on one connection and takes the answers as
 * they come: the broker works on them in parallel and may answer in any
 * order.
 *
 * once_client_request_send checks, signs and sends one request and returns
 * at once with its ticket. once_client_request_receive hands back the next
 * request that ended, with its ticket, exactly as once_client_request_ex
 * would have returned it: the same checks (the record is the one asked
 * for, well formed; verify the issuer's signature with once_record_verify
 * as always), the same receipt. Every ticket comes back exactly once. A
 * request without an answer is re-sent (the same bytes, so never executed
 * twice) after each timeout_ms of the client's options and ends with
 * -ONCE_ERR_TIMEOUT after its last attempt: no request waits forever,
 * even when the broker is gone. A handshake the broker refuses ends every
 * request in flight with UNKNOWN_SENDER or CONNECT.
 *
 * At most ONCE_MAX_IN_FLIGHT envelopes are in flight on a client: sent, and
 * not yet received (answered or not). One more is refused with
 * -ONCE_ERR_TOO_MANY_IN_FLIGHT and nothing is sent: receive first. The
 * synchronous calls are one envelope sent and received at once; they may
 * be made between sends and receives, keep the answers of the requests in
 * flight for their receive, and count against the same limit. As for
 * every call, one thread at a time uses a client.
 * ------------------------------------------------------------------------- */

#define ONCE_MAX_IN_FLIGHT 32

/* Sends a request without waiting for its answer. user NULL names no
 * official; otherwise, and every other argument, as for
 * once_client_request_as, with the same refusals before anything is sent.
 * *ticket (not 0, unique on c) is what once_client_request_receive
 * returns with its answer. 0 or -code (*ticket is then 0). */
int once_client_request_send(once_client *c, const char *user,
                             const char *type, const char *subject,
                             const char *purpose, const char *case_id,
                             uint64_t version, int want_proof,
                             uint64_t *ticket, once_error *err);
/* Waits up to timeout_ms (< 0: until a request ends, which each request's
 * own timeouts bound; 0: only for what has already arrived) for a request
 * in flight to end, and returns it:
 *   *ticket not 0: that request ended, with 0 and *out (the record) or
 *     with -code (the broker's refusal, TIMEOUT after its last attempt, a
 *     failed connection), as once_client_request_ex returns; receipt (may
 *     be NULL) as there.
 *   *ticket 0: no request ended. -ONCE_ERR_TIMEOUT when timeout_ms passed
 *     (requests are still in flight: receive again);
 *     -ONCE_ERR_INVALID_ARGUMENT when none is in flight.
 * When several have ended, the one sent first comes first. */
int once_client_request_receive(once_client *c, int timeout_ms,
                                uint64_t *ticket, once_record **out,
                                once_receipt *receipt, once_error *err);
/* Envelopes sent on c and not yet received. */
size_t once_client_in_flight(const once_client *c);
/* The one call another thread may make while a thread uses c: makes a
 * once_client_request_receive waiting on c return at once, or the next
 * one if none waits, with -ONCE_ERR_TIMEOUT and *ticket 0. For a program
 * whose threads hand their requests to the one thread that sends and
 * receives on c (adapters/common/lanes.c): the receiving thread is woken
 * to send them. Async-signal-safe; c must stay open. */
void once_client_wake(once_client *c);

/* ---------------------------------------------------------------------------
 * Prepared envelopes: idempotent retries across connections and restarts
 *
 * A program that must survive its own restart between sending a publish
 * and reading its answer (the REST gateway's Idempotency-Key) keeps the
 * signed envelope bytes, and sends those very bytes again: the broker
 * answers a repeated envelope with its original answer (docs/PROTOCOL.md
 * 6.3), as long as its sent_at is within the broker's skew window.
 * ------------------------------------------------------------------------- */

/* Signs the envelope that once_client_publish_ex (a VALID record) or
 * once_client_revoke_ex (a revocation) would send, using the next seq of
 * c's session, without sending it. *envelope is malloc'd; the caller frees
 * it. */
int once_client_prepare_write(once_client *c, const once_record *r,
                              int want_proof, uint8_t **envelope,
                              size_t *envelope_len, once_error *err);
/* Sends envelope bytes made by once_client_prepare_write, by this client
 * or another of the same department, and waits for the answer like the
 * _ex calls (re-sending the same bytes after each timeout). Answers are
 * matched by seq: use a client with no abandoned call outstanding (one
 * whose last call did not time out); an envelope whose seq is in flight
 * on c is -ONCE_ERR_INVALID_ARGUMENT. 0 or -code; receipt as above. */
int once_client_send_prepared(once_client *c, const uint8_t *envelope,
                              size_t envelope_len, once_receipt *receipt,
                              once_error *err);

/* ---------------------------------------------------------------------------
 * The directory (docs/PROTOCOL.md 4.8)
 *
 * The broker signs, for each department that asks, a directory of every
 * department (id, name, public key, status), the catalogue of record types
 * and that department's own grants. An adapter verifies issuers' records
 * with the keys in it, and tells its callers what they may publish and
 * request. The directory's version is the SHA-256 of its content: asking
 * again with the directory one holds costs the broker no more than a
 * signature when nothing changed.
 * ------------------------------------------------------------------------- */

typedef struct once_directory once_directory;

/* How far issued_at may be from the local clock, and so how old a
 * directory may be when it is received. */
#define ONCE_DIRECTORY_MAX_SKEW_MS (5 * 60 * 1000)

typedef struct once_directory_department {
    const char *id;
    const char *name;
    const uint8_t *public_key;   /* ONCE_PUBLIC_KEY_BYTES */
    int active;                  /* 0: suspended */
} once_directory_department;

typedef struct once_directory_type {
    const char *name;
    once_subject_kind subject_kind;
    const char *const *issuers;
    size_t issuer_count;
    const char *const *fields;
    size_t field_count;
} once_directory_type;

typedef struct once_directory_grant {
    const char *type;
    const char *purpose;
    const char *const *fields;
    size_t field_count;
} once_directory_grant;

/* Asks the broker for its directory, sending known's digest when known is
 * not NULL, and checks the answer with once_directory_verify (the broker
 * key and department c was opened with). *out is a new directory, also
 * when the content is unchanged (then it holds known's content with the
 * new issued_at). */
int once_client_directory(once_client *c, const once_directory *known,
                          once_directory **out, once_error *err);

/* Checks a serialized SignedDirectory: the broker's signature
 * (-ONCE_ERR_BAD_SIGNATURE), made for department (-ONCE_ERR_INVALID_RECORD),
 * issued within ONCE_DIRECTORY_MAX_SKEW_MS of the local clock and not
 * before known's (-ONCE_ERR_CLOCK_SKEW: stale), the content's digest
 * (-ONCE_ERR_INVALID_RECORD), a content that decodes (-ONCE_ERR_MALFORMED);
 * content left out is taken from known when the digests agree. */
int once_directory_verify(once_directory **out, const uint8_t *signed_bytes,
                          size_t len,
                          const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
                          const char *department, const once_directory *known,
                          once_error *err);
void once_directory_free(once_directory *d);

uint64_t once_directory_issued_at(const once_directory *d);
/* The version: SHA-256 of the content, ONCE_DIGEST_BYTES. */
const uint8_t *once_directory_digest(const once_directory *d);
size_t once_directory_department_count(const once_directory *d);
size_t once_directory_type_count(const once_directory *d);
size_t once_directory_grant_count(const once_directory *d);
/* The i-th entry (0 or -ONCE_ERR_INVALID_ARGUMENT); pointers live as long
 * as d. */
int once_directory_department_at(const once_directory *d, size_t i,
                                 once_directory_department *out);
int once_directory_type_at(const once_directory *d, size_t i,
                           once_directory_type *out);
int once_directory_grant_at(const once_directory *d, size_t i,
                            once_directory_grant *out);
/* A department by id: 0, or -ONCE_ERR_UNKNOWN_SENDER. */
int once_directory_find_department(const once_directory *d, const char *id,
                                   once_directory_department *out);

/* ---------------------------------------------------------------------------
 * Subscriptions and notices (docs/PROTOCOL.md 4.9)
 *
 * A department subscribes to a record type, to one subject of a type, or
 * to every record it holds (was granted by a request), and then learns of
 * each new version or revocation of a matching record whose type its
 * grants cover: a notice names the record and the event, at the leaf
 * index of the broker's log where it happened; the record itself is
 * fetched with once_client_request. Subscribing and cancelling are logged
 * like requests. Delivery is at least once: notices come again after a
 * reconnect or a restart of either side until they are acknowledged, and
 * a notice's leaf_index identifies it. A notice's subject is personal
 * data: keep it out of logs.
 * ------------------------------------------------------------------------- */

typedef enum once_subscription_scope {
    ONCE_SCOPE_TYPE = 1,     /* every record of a type */
    ONCE_SCOPE_SUBJECT = 2,  /* one subject of a type */
    ONCE_SCOPE_HELD = 3      /* the records held: of a type, or of every
                                type when type is "" or NULL */
} once_subscription_scope;

typedef enum once_notice_event {
    ONCE_NOTICE_NEW_VERSION = 1,
    ONCE_NOTICE_REVOKED = 2
} once_notice_event;

typedef struct once_notice {
    uint64_t leaf_index;                 /* identifies the notice */
    char type[ONCE_MAX_NAME + 1];
    char subject[ONCE_MAX_SUBJECT + 1];
    uint64_t version;
    once_notice_event event;
} once_notice;

typedef struct once_subscription {
    once_subscription_scope scope;
    char type[ONCE_MAX_NAME + 1];
    char subject[ONCE_MAX_SUBJECT + 1];
    uint64_t leaf_index;                 /* of the subscribe leaf */
    uint64_t created_at;                 /* broker clock, Unix ms */
} once_subscription;

/* Subscribes c's department to (scope, type, subject); subject only for
 * ONCE_SCOPE_SUBJECT (else NULL or ""). Subscribing again to the same
 * target renews it. type and subject must be clean text within their
 * limits (-ONCE_ERR_INVALID_TEXT, -ONCE_ERR_INVALID_ARGUMENT; nothing is
 * sent). Refusals: -ONCE_ERR_UNKNOWN_TYPE, -ONCE_ERR_INVALID_SUBJECT,
 * -ONCE_ERR_NO_GRANT (no grant on the type), -ONCE_ERR_TOO_LARGE (256
 * subscriptions held). receipt (may be NULL) as for a request. */
int once_client_subscribe(once_client *c, once_subscription_scope scope,
                          const char *type, const char *subject,
                          once_receipt *receipt, once_error *err);
/* Cancels it: 0, or -ONCE_ERR_NOT_FOUND when the department holds none. */
int once_client_unsubscribe(once_client *c, once_subscription_scope scope,
                            const char *type, const char *subject,
                            once_receipt *receipt, once_error *err);
/* The department's subscriptions, *out malloc'd (free with free(); NULL
 * when there are none) with *count entries, and its acknowledgement
 * cursor in *acked (may be NULL). */
int once_client_subscriptions(once_client *c, once_subscription **out,
                              size_t *count, uint64_t *acked,
                              once_error *err);

/* The next notice, waiting up to timeout_ms for one: 0 with *out filled,
 * or -ONCE_ERR_TIMEOUT when none came. The first call, and the first
 * after the client reconnected, registers this connection with the
 * broker (a round trip that may take up to the client's call timeout);
 * notices then come after the department's last acknowledgement, pushed
 * within a credit the client renews. A notice with a leaf index this
 * client already returned is skipped. Notices that arrive during other
 * calls wait in a bounded queue for this one. */
int once_client_notice_next(once_client *c, int timeout_ms, once_notice *out,
                            once_error *err);
/* Acknowledges every notice up to leaf_index (the department's cursor;
 * durable once this returns 0). -ONCE_ERR_NOT_FOUND for a leaf index
 * beyond the newest notice. */
int once_client_notice_ack(once_client *c, uint64_t leaf_index,
                           once_error *err);
/* The same acknowledgement for a subscriber that pulls, on a connection
 * that does not read pushes (a gateway's pooled one): with credit 0, so
 * the broker pushes nothing on c (and stops what it pushed on it);
 * *cursor (may be NULL) gets the department's cursor after it, at least
 * leaf_index. -ONCE_ERR_NOT_FOUND as above. A later notice_next on c
 * registers again. */
int once_client_notice_ack_pull(once_client *c, uint64_t leaf_index,
                                uint64_t *cursor, once_error *err);
/* Pulls up to cap (at most 64) notices of the leaves above after, without
 * a registration: *count of them in out, and *scanned_to, the after of
 * the next pull (equal to after when there is nothing more). */
int once_client_notices_pull(once_client *c, uint64_t after, once_notice *out,
                             size_t cap, size_t *count, uint64_t *scanned_to,
                             once_error *err);

#ifdef __cplusplus
}
#endif

#endif /* ONCE_ONCE_H */
