/*
 * json.h - a small, strict JSON reader and writer (RFC 8259).
 *
 * Used for safetensors headers and for metadata that nnlua stores inside
 * them.  The reader builds a tree of nn_json values; it rejects anything
 * RFC 8259 does not allow (trailing commas, comments, leading zeros, control
 * characters in strings, invalid UTF-8, lone surrogates, trailing garbage),
 * except that NN_JSON_NONFINITE admits the tokens NaN, Infinity and
 * -Infinity that Python's json module reads and writes.  Numbers keep their
 * source text, so a caller decides between integer and float exactly.
 * Errors name the byte offset: "at byte 37: expected ':' after an object
 * key".
 *
 * The writer appends to a growing buffer (nn_jbuf); an allocation failure
 * is remembered in the buffer and reported once by nn_jbuf_failed.
 */
#ifndef NN_JSON_H
#define NN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

typedef enum nn_json_type {
  NN_JSON_NULL,
  NN_JSON_FALSE,
  NN_JSON_TRUE,
  NN_JSON_NUMBER,
  NN_JSON_STRING,
  NN_JSON_ARRAY,
  NN_JSON_OBJECT
} nn_json_type;

typedef struct nn_json nn_json;
typedef struct nn_json_member nn_json_member;

/* One value.  str/len: a string's decoded bytes (NUL-terminated; len
 * counts bytes and may include "\u0000" NULs) or a number's source text.
 * items/len: an array's elements.  members/len: an object's members in
 * source order (duplicates are kept: see nn_json_find_duplicate).  offset:
 * where the value starts in the text, for error messages. */
struct nn_json {
  nn_json_type type;
  size_t len;
  char *str;
  nn_json *items;
  nn_json_member *members;
  size_t offset;
};

struct nn_json_member {
  char *key; /* decoded, NUL-terminated */
  size_t key_len;
  nn_json value;
};

/* Reader flags. */
#define NN_JSON_NONFINITE 1 /* accept NaN, Infinity, -Infinity */

/* Deepest nesting of arrays and objects the reader accepts. */
#define NN_JSON_MAX_DEPTH 256

/* Parses text[0..len) (one value, optional surrounding whitespace) into
 * *out, which the caller releases with nn_json_free.  On failure returns -1
 * with "at byte N: what was expected" in err and leaves *out empty (null,
 * safe to free).  Fails on malformed text, nesting deeper than
 * NN_JSON_MAX_DEPTH, or out of memory. */
int nn_json_parse(const char *text, size_t len, int flags, nn_json *out,
                  nn_error *err);
/* Releases everything v owns (not v itself) and resets it to null. */
void nn_json_free(nn_json *v);

/* The value of the first member of obj named key, or NULL (also when obj is
 * not an object). */
const nn_json *nn_json_get(const nn_json *obj, const char *key);
/* Index of the second occurrence of a key that appears more than once in
 * object obj, or -1 when all keys are distinct (O(n log n)).  Returns -2
 * when out of memory. */
int64_t nn_json_find_duplicate(const nn_json *obj);
/* Reads a number that is a non-negative integer written without fraction
 * or exponent into *out; returns -1 when v is not one or exceeds 2^64-1. */
int nn_json_to_u64(const nn_json *v, uint64_t *out);
/* "string", "number", ... for messages. */
const char *nn_json_typename(nn_json_type t);

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF). */
int nn_utf8_valid(const char *s, size_t n);

/* A growing output buffer.  Start from nn_jbuf_init (or zero-filled). */
typedef struct nn_jbuf {
  char *data; /* NUL-terminated when len > 0 */
  size_t len, cap;
  int failed; /* an allocation failed: the content is incomplete */
} nn_jbuf;

void nn_jbuf_init(nn_jbuf *b);
void nn_jbuf_free(nn_jbuf *b);
/* Appends n raw bytes. */
void nn_jbuf_raw(nn_jbuf *b, const char *s, size_t n);
/* Appends a NUL-terminated string verbatim. */
void nn_jbuf_puts(nn_jbuf *b, const char *s);
/* Appends s[0..n) as a quoted JSON string, escaping '"', '\\' and control
 * characters.  Returns -1 (appending nothing) when s is not valid UTF-8. */
int nn_jbuf_string(nn_jbuf *b, const char *s, size_t n);
void nn_jbuf_u64(nn_jbuf *b, uint64_t v);
void nn_jbuf_i64(nn_jbuf *b, int64_t v);
/* Appends a double in the shortest "%.Ng" form that reads back to the
 * same value, always with a '.' or an exponent so that it reads as a float
 * ("1.0", "1e+100"); NaN, Infinity and -Infinity for non-finite values
 * (readable with NN_JSON_NONFINITE). */
void nn_jbuf_double(nn_jbuf *b, double v);

#endif
