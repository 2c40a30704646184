/*
 * test_safetensors.c - the JSON reader/writer and the safetensors reader
 * and atomic writer: round trips, a file with known bytes, every kind of
 * corrupt file, and the atomicity of a failed write.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../runtime/json.h"
#include "../../runtime/safetensors.h"
#include "../../runtime/tensor.h"
#include "check.h"

static char dir[64];

/* dir/name in a static buffer (one of four, round robin). */
static const char *tpath(const char *name) {
  static char bufs[4][256];
  static int k;
  char *b = bufs[k++ & 3];
  snprintf(b, 256, "%s/%s", dir, name);
  return b;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, n, f);
  fclose(f);
}

/* The file's bytes (malloc'd) and length; NULL when unreadable. */
static unsigned char *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

/* Writes a safetensors file: the length prefix, header text, then
 * data_len bytes (0, 1, 2, ...). */
static void write_st(const char *path, const char *header, size_t data_len) {
  size_t n = strlen(header);
  unsigned char *b = malloc(8 + n + data_len + 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
  memcpy(b + 8, header, n);
  for (size_t i = 0; i < data_len; i++) b[8 + n + i] = (unsigned char)i;
  write_bytes(path, b, 8 + n + data_len);
  free(b);
}

/* Number of files in dir whose name contains ".tmp.". */
static int count_temp_files(void) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) n++;
  if (d) closedir(d);
  return n;
}

/* ---- JSON ---- */

static void test_json_parse_values(void) {
  nn_json v;
  nn_error err;
  const char *text =
      " {\"a\": [1, -2.5e3, 0, true, false, null], \"s\": \"x\\\"\\\\\\/\\b"
      "\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\xc3\xa9\", \"o\": {}, \"e\": []} ";
  CHECK(nn_json_parse(text, strlen(text), 0, &v, &err) == 0);
  CHECK(v.type == NN_JSON_OBJECT && v.len == 4);
  const nn_json *a = nn_json_get(&v, "a");
  CHECK(a && a->type == NN_JSON_ARRAY && a->len == 6);
  if (a && a->len == 6) {
    CHECK(strcmp(a->items[0].str, "1") == 0);
    CHECK(strcmp(a->items[1].str, "-2.5e3") == 0);
    CHECK(a->items[3].type == NN_JSON_TRUE);
    CHECK(a->items[4].type == NN_JSON_FALSE);
    CHECK(a->items[5].type == NN_JSON_NULL);
    uint64_t u = 7;
    CHECK(nn_json_to_u64(&a->items[0], &u) == 0 && u == 1);
    CHECK(nn_json_to_u64(&a->items[1], &u) < 0);
    CHECK(nn_json_to_u64(&a->items[3], &u) < 0);
  }
  const nn_json *s = nn_json_get(&v, "s");
  const char want[] = "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\xc3\xa9";
  CHECK(s && s->len == sizeof want - 1 && memcmp(s->str, want, s->len) == 0);
  CHECK(nn_json_get(&v, "o")->type == NN_JSON_OBJECT);
  CHECK(nn_json_get(&v, "missing") == NULL);
  CHECK(nn_json_find_duplicate(&v) == -1);
  nn_json_free(&v);

  /* "\u0000" keeps its NUL inside the string's length. */
  CHECK(nn_json_parse("\"a\\u0000b\"", 10, 0, &v, &err) == 0);
  CHECK(v.len == 3 && v.str[1] == '\0' && v.str[2] == 'b');
  nn_json_free(&v);

  CHECK(nn_json_parse("{\"k\":1,\"j\":2,\"k\":3}", 19, 0, &v, &err) == 0);
  CHECK(nn_json_find_duplicate(&v) == 2);
  nn_json_free(&v);

  CHECK(nn_json_parse("18446744073709551615", 20, 0, &v, &err) == 0);
  uint64_t big = 0;
  CHECK(nn_json_to_u64(&v, &big) == 0 && big == UINT64_MAX);
  nn_json_free(&v);
  CHECK(nn_json_parse("18446744073709551616", 20, 0, &v, &err) == 0);
  CHECK(nn_json_to_u64(&v, &big) < 0);
  nn_json_free(&v);

  /* Non-finite tokens only with the flag. */
  const char *nf = "[NaN, Infinity, -Infinity]";
  CHECK(nn_json_parse(nf, strlen(nf), 0, &v, &err) < 0);
  CHECK(nn_json_parse(nf, strlen(nf), NN_JSON_NONFINITE, &v, &err) == 0);
  CHECK(v.len == 3 && strcmp(v.items[2].str, "-Infinity") == 0);
  nn_json_free(&v);
}

static void test_json_parse_errors(void) {
  static const struct {
    const char *text, *msg;
  } cases[] = {
      {"", "at byte 0: unexpected end of text"},
      {"{\"a\":1,}", "at byte 7: expected a string key"},
      {"[1,]", "at byte 3: expected a value"},
      {"[1 2]", "at byte 3: expected ',' or ']'"},
      {"{\"a\" 1}", "at byte 5: expected ':'"},
      {"{\"a\":1 \"b\":2}", "at byte 7: expected ',' or '}'"},
      {"01", "at byte 0: leading zero"},
      {"1.", "at byte 2: expected a digit after '.'"},
      {"1e+", "at byte 3: expected a digit in the exponent"},
      {"-", "at byte 0: expected a digit"},
      {"\"abc", "at byte 0: unterminated string"},
      {"\"a\tb\"", "at byte 2: control character"},
      {"\"\\x\"", "at byte 1: invalid escape"},
      {"\"\\u12g4\"", "at byte 1: bad \\u escape"},
      {"\"\\udc00\"", "lone low surrogate"},
      {"\"\\ud800x\"", "high surrogate not followed"},
      {"\"\xff\"", "at byte 1: invalid UTF-8"},
      {"\"\xc0\xaf\"", "invalid UTF-8"},     /* overlong '/' */
      {"\"\xed\xa0\x80\"", "invalid UTF-8"}, /* encoded surrogate */
      {"tru", "expected a value"},
      {"nul", "expected a value"},
      {"{} x", "at byte 3: unexpected text after the value"},
      {"// c\n{}", "expected a value"},
      {"NaN", "expected a value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    nn_json v;
    nn_error err = {{0}};
    int rc = nn_json_parse(cases[i].text, strlen(cases[i].text), 0, &v, &err);
    CHECK(rc < 0);
    CHECK(strstr(err.msg, cases[i].msg) != NULL);
    if (rc < 0 && !strstr(err.msg, cases[i].msg))
      fprintf(stderr, "  case %zu: got \"%s\"\n", i, err.msg);
    CHECK(v.type == NN_JSON_NULL && v.str == NULL);
    if (rc == 0) nn_json_free(&v);
  }
  /* Nesting limit. */
  char deep[2 * NN_JSON_MAX_DEPTH + 10];
  size_t n = 0;
  for (int i = 0; i < NN_JSON_MAX_DEPTH + 1; i++) deep[n++] = '[';
  for (int i = 0; i < NN_JSON_MAX_DEPTH + 1; i++) deep[n++] = ']';
  nn_json v;
  nn_error err;
  CHECK(nn_json_parse(deep, n, 0, &v, &err) < 0);
  CHECK(strstr(err.msg, "nesting too deep") != NULL);
  CHECK(nn_json_parse(deep + 1, n - 2, 0, &v, &err) == 0);
  nn_json_free(&v);
}

static void test_json_write(void) {
  nn_jbuf b;
  nn_jbuf_init(&b);
  CHECK(nn_jbuf_string(&b, "a\"\\\n\x01\xc3\xa9", 7) == 0);
  CHECK(strcmp(b.data, "\"a\\\"\\\\\\n\\u0001\xc3\xa9\"") == 0);
  CHECK(nn_jbuf_string(&b, "\xff", 1) < 0);
  nn_jbuf_free(&b);

  static const struct {
    double v;
    const char *s;
  } nums[] = {{1.0, "1.0"},         {0.1, "0.1"},        {-0.0, "-0.0"},
              {1e100, "1e+100"},     {1.0 / 3, "0.3333333333333333"},
              {123456789.0, "123456789.0"},
              {2.5e-8, "2.5e-08"}};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    nn_jbuf_init(&b);
    nn_jbuf_double(&b, nums[i].v);
    CHECK(b.data && strcmp(b.data, nums[i].s) == 0);
    if (b.data && strcmp(b.data, nums[i].s) != 0)
      fprintf(stderr, "  got %s, expected %s\n", b.data, nums[i].s);
    CHECK(b.data && strtod(b.data, NULL) == nums[i].v);
    nn_jbuf_free(&b);
  }
  nn_jbuf_init(&b);
  nn_jbuf_double(&b, 1.0 / 0.0);
  nn_jbuf_raw(&b, " ", 1);
  nn_jbuf_double(&b, -1.0 / 0.0);
  nn_jbuf_raw(&b, " ", 1);
  nn_jbuf_double(&b, 0.0 / 0.0);
  nn_jbuf_raw(&b, " ", 1);
  nn_jbuf_i64(&b, INT64_MIN);
  nn_jbuf_raw(&b, " ", 1);
  nn_jbuf_u64(&b, UINT64_MAX);
  CHECK(strcmp(b.data, "Infinity -Infinity NaN -9223372036854775808 "
                       "18446744073709551615") == 0);
  nn_jbuf_free(&b);
}

/* ---- safetensors ---- */

static nn_tensor *make(int ndim, const int64_t *shape, float start) {
  nn_error err;
  nn_tensor *t = nn_tensor_new(ndim, shape, &err);
  float *x = nn_data(t);
  for (int64_t i = 0; i < nn_tensor_numel(t); i++)
    x[i] = start + (float)i * 0.37f - (float)(i % 3);
  return t;
}

static int equal_exact(const nn_tensor *a, const nn_tensor *b) {
  if (!nn_tensor_same_shape(a, b)) return 0;
  for (int64_t i = 0; i < nn_tensor_numel(a); i++) {
    float x = nn_data(a)[nn_tensor_elem_offset(a, i)];
    float y = nn_data(b)[nn_tensor_elem_offset(b, i)];
    if (memcmp(&x, &y, sizeof x) != 0) return 0;
  }
  return 1;
}

static const nn_st_entry *find(const nn_safetensors *st, const char *name) {
  for (int64_t i = 0; i < st->count; i++)
    if (strcmp(st->entries[i].name, name) == 0) return &st->entries[i];
  return NULL;
}

static void test_round_trip(void) {
  nn_error err;
  int64_t s0[1] = {0}, s1[2] = {3, 4}, s2[4] = {2, 3, 2, 2}, s3[2] = {0, 5},
          s4[1] = {6};
  nn_tensor *base = make(2, s1, -1.0f);
  nn_tensor *view = nn_tensor_narrow(base, 1, 1, 2, &err); /* strided */
  nn_tensor *ts[] = {make(0, s0, 3.25f), base, make(4, s2, 0.5f),
                     make(2, s3, 0.0f), view, make(1, s4, 1e30f)};
  nn_data(ts[5])[1] = -0.0f;
  nn_data(ts[5])[2] = 1.0f / 0.0f;
  nn_data(ts[5])[3] = 1e-45f; /* subnormal */
  const char *names[] = {"scalar", "layer.0.weight", "z.conv", "empty",
                         "view", "special \xc3\xa9\"\\"};
  const char *mk[] = {"format", "note"};
  const char *mv[] = {"pt", "line1\nline2 \"q\""};
  const char *path = tpath("rt.safetensors");
  CHECK(nn_safetensors_save(path, 6, names, ts, 2, mk, mv, &err) == 0);
  CHECK(count_temp_files() == 0);

  nn_safetensors st;
  CHECK(nn_safetensors_load(path, &st, &err) == 0);
  CHECK(st.count == 6 && st.meta_count == 2);
  for (int i = 0; i < 6; i++) {
    const nn_st_entry *e = find(&st, names[i]);
    CHECK(e != NULL);
    if (!e) continue;
    CHECK(strcmp(e->dtype, "F32") == 0);
    CHECK(e->tensor && equal_exact(e->tensor, ts[i]));
  }
  /* Header order is sorted by name, and so is the data. */
  for (int64_t i = 1; i < st.count; i++) {
    CHECK(strcmp(st.entries[i - 1].name, st.entries[i].name) < 0);
    CHECK(st.entries[i - 1].end == st.entries[i].begin);
  }
  CHECK((8 + st.header_len) % 8 == 0);
  CHECK(strcmp(st.meta_keys[0], "format") == 0);
  CHECK(strcmp(st.meta_values[1], mv[1]) == 0);
  CHECK(find(&st, "scalar")->ndim == 0);
  nn_safetensors_free(&st);
  CHECK(st.count == 0 && st.entries == NULL);

  /* Inspect reads the header only. */
  CHECK(nn_safetensors_inspect(path, &st, &err) == 0);
  CHECK(st.count == 6 && find(&st, "z.conv")->tensor == NULL);
  CHECK(find(&st, "z.conv")->shape[3] == 2);
  nn_safetensors_free(&st);

  /* Saving again over the file replaces it. */
  CHECK(nn_safetensors_save(path, 1, names, ts, 0, NULL, NULL, &err) == 0);
  CHECK(nn_safetensors_load(path, &st, &err) == 0);
  CHECK(st.count == 1 && st.meta_count == 0);
  nn_safetensors_free(&st);

  /* Nothing at all. */
  CHECK(nn_safetensors_save(path, 0, NULL, NULL, 0, NULL, NULL, &err) == 0);
  size_t n;
  unsigned char *b = read_bytes(path, &n);
  CHECK(b && n == 16 && b[0] == 8 && memcmp(b + 8, "{}      ", 8) == 0);
  free(b);
  CHECK(nn_safetensors_load(path, &st, &err) == 0 && st.count == 0);
  nn_safetensors_free(&st);
  for (int i = 0; i < 6; i++) nn_tensor_release(ts[i]);
  remove(path);
}

/* The exact bytes the reference implementation writes. */
static void test_header_bytes(void) {
  nn_error err;
  int64_t s0[1] = {0}, s1[1] = {2};
  nn_tensor *a = make(0, s0, 3.0f), *b = make(1, s1, 1.0f);
  nn_data(b)[0] = 1.0f;
  nn_data(b)[1] = -2.0f;
  const char *names[] = {"b", "a"};
  nn_tensor *ts[] = {b, a};
  const char *mk[] = {"format"}, *mv[] = {"pt"};
  const char *path = tpath("hdr.safetensors");
  CHECK(nn_safetensors_save(path, 2, names, ts, 1, mk, mv, &err) == 0);
  const char *want =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
  size_t wn = strlen(want), padded = (wn + 7) / 8 * 8, n;
  unsigned char *f = read_bytes(path, &n);
  CHECK(f && n == 8 + padded + 12);
  if (f && n == 8 + padded + 12) {
    CHECK(f[0] == (unsigned char)padded && f[1] == 0 && f[7] == 0);
    CHECK(memcmp(f + 8, want, wn) == 0);
    for (size_t i = wn; i < padded; i++) CHECK(f[8 + i] == ' ');
    static const unsigned char data[12] = {0, 0, 0x40, 0x40, 0, 0, 0x80, 0x3f,
                                           0, 0, 0,    0xc0};
    CHECK(memcmp(f + 8 + padded, data, 12) == 0);
  }
  free(f);
  nn_tensor_release(a);
  nn_tensor_release(b);
  remove(path);
}

/* A file written byte by byte (as PyTorch's safetensors would for these
 * dtypes) loads to exact values. */
static void test_known_bytes(void) {
  const char *hdr =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]},"
      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[16,20]},"
      "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[20,28]},"
      "\"n\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[28,44]},"
      "\"u\":{\"dtype\":\"U8\",\"shape\":[1,2],\"data_offsets\":[44,46]},"
      "\"q\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[46,48]},"
      "\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[48,52]},"
      "\"s\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[52,54]},"
      "\"c\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[54,55]},"
      "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[55,55]}}";
  static const unsigned char data[55] = {
      0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, /* F32 1.5, -2 */
      0x00, 0x3c, 0x00, 0xb8, 0xff, 0x7b, 0x01, 0x00, /* F16 1, -.5, 65504, 2^-24 */
      0x80, 0x3f, 0x49, 0xc0,                         /* BF16 1, -3.140625 */
      0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f, /* F64 0.1 */
      0x07, 0,    0,    0,    0,    0,    0,    0,    /* I64 7 */
      0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* I64 -3 */
      0x00, 0xff,                                     /* U8 0, 255 */
      0x01, 0x00,                                     /* BOOL true, false */
      0x00, 0x00, 0x01, 0x80,                         /* I32 -2147418112 */
      0x18, 0xfc,                                     /* I16 -1000 */
      0x80};                                          /* I8 -128 */
  size_t hn = strlen(hdr);
  unsigned char *file = malloc(8 + hn + sizeof data);
  for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)hn >> (8 * i));
  memcpy(file + 8, hdr, hn);
  memcpy(file + 8 + hn, data, sizeof data);
  const char *path = tpath("known.safetensors");
  write_bytes(path, file, 8 + hn + sizeof data);
  free(file);

  nn_safetensors st;
  nn_error err;
  CHECK(nn_safetensors_load(path, &st, &err) == 0);
  if (st.count != 11) {
    fprintf(stderr, "  load: %s\n", err.msg);
    CHECK(0);
    return;
  }
  static const struct {
    const char *name, *dtype;
    int n;
    float v[4];
  } want[] = {
      {"a", "F32", 2, {1.5f, -2.0f}},
      {"h", "F16", 4, {1.0f, -0.5f, 65504.0f, 5.9604644775390625e-8f}},
      {"b", "BF16", 2, {1.0f, -3.140625f}},
      {"d", "F64", 1, {0.1f}},
      {"n", "I64", 2, {7.0f, -3.0f}},
      {"u", "U8", 2, {0.0f, 255.0f}},
      {"q", "BOOL", 2, {1.0f, 0.0f}},
      {"i", "I32", 1, {-2147418112.0f}},
      {"s", "I16", 1, {-1000.0f}},
      {"c", "I8", 1, {-128.0f}},
  };
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    const nn_st_entry *e = find(&st, want[k].name);
    CHECK(e && strcmp(e->dtype, want[k].dtype) == 0);
    if (!e) continue;
    CHECK(nn_tensor_numel(e->tensor) == want[k].n);
    for (int i = 0; i < want[k].n; i++) CHECK(nn_data(e->tensor)[i] == want[k].v[i]);
  }
  CHECK(find(&st, "h")->tensor->ndim == 2 && find(&st, "h")->shape[1] == 2);
  CHECK(find(&st, "d")->tensor->ndim == 0);
  CHECK(find(&st, "e")->tensor->shape[0] == 0 && find(&st, "e")->shape[1] == 3);
  CHECK(st.meta_count == 1 && strcmp(st.meta_values[0], "pt") == 0);
  /* Header order is kept. */
  CHECK(strcmp(st.entries[0].name, "a") == 0 &&
        strcmp(st.entries[10].name, "e") == 0);
  nn_safetensors_free(&st);
  remove(path);
}

/* Every way a file can be broken gives an error naming the file and the
 * problem, and leaves the result empty. */
static void test_corrupt(void) {
  static const struct {
    const char *header;
    size_t data_len;
    const char *msg;
  } cases[] = {
      {"{\"a\":{\"dtype\":\"F32\",}}", 0,
       "invalid JSON header: at byte 20: expected a string key"},
      {"{\"a\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
       "tensor 'a' has unsupported dtype 'F99'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
       "tensor 'a' of shape [2, 3] and dtype F32 needs 24 bytes, but its "
       "data_offsets [0, 20] span 20"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 4,
       "data_offsets [4, 8] of tensor 'b' are out of range (the data buffer "
       "holds 4 bytes)"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
       "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
       "bytes [4, 8] of the data buffer belong to no tensor"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
       "bytes [0, 4] of the data buffer belong to no tensor"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
       "bytes [4, 8] of the data buffer belong to no tensor"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
       "duplicate tensor name 'a'"},
      {"[1]", 0, "the header must be a JSON object, got array"},
      {"{\"__metadata__\":{\"k\":1}}", 0,
       "__metadata__ value of 'k' must be a string, got number"},
      {"{\"__metadata__\":[]}", 0, "__metadata__ must be an object"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8,
       "data_offsets [8, 4] of tensor 'a' end before they begin"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
       "\"data_offsets\":[0,4]}}", 4, "tensor 'a' has 9 dimensions, at most 8"},
      {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
       "header entry of tensor 'a' lacks 'shape'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
       "shape of tensor 'a' must hold non-negative integers (entry 0 is -1)"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
       "entry 0 is 1.0"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
       "data_offsets of tensor 'a' must be two non-negative integers"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
       "\"data_offsets\":[0,4]}}", 4, "tensor 'a' is too large"},
      {"{\"a\":7}", 0, "header entry of tensor 'a' must be an object, got number"},
      {"{\"\xff\":{}}", 0, "invalid JSON header: at byte 2: invalid UTF-8"},
      {"", 0, "invalid JSON header: at byte 0: unexpected end of text"},
  };
  const char *path = tpath("bad.safetensors");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_st(path, cases[i].header, cases[i].data_len);
    nn_safetensors st;
    nn_error err = {{0}};
    int rc = nn_safetensors_load(path, &st, &err);
    CHECK(rc < 0);
    CHECK(strncmp(err.msg, path, strlen(path)) == 0);
    CHECK(strstr(err.msg, cases[i].msg) != NULL);
    if (rc == 0 || !strstr(err.msg, cases[i].msg))
      fprintf(stderr, "  case %zu: got \"%s\"\n", i, rc ? err.msg : "success");
    CHECK(st.count == 0 && st.entries == NULL && st.meta_count == 0);
    if (rc == 0) nn_safetensors_free(&st);
    /* inspect validates the same way */
    CHECK(nn_safetensors_inspect(path, &st, &err) < 0);
  }

  nn_safetensors st;
  nn_error err;
  /* Truncated: shorter than the length prefix. */
  write_bytes(path, "\x10\0\0", 3);
  CHECK(nn_safetensors_load(path, &st, &err) < 0);
  CHECK(strstr(err.msg, "file of 3 bytes is too short for a safetensors "
                        "header") != NULL);
  /* Header length past the end of the file. */
  unsigned char b[20] = {0x15, 0xcd, 0x5b, 0x07, 0, 0, 0, 0, '{', '}'};
  write_bytes(path, b, sizeof b);
  CHECK(nn_safetensors_load(path, &st, &err) < 0);
  char want[256];
  snprintf(want, sizeof want,
           "%s: header length 123456789 exceeds the file size 20", path);
  CHECK(strcmp(err.msg, want) == 0);
  /* A header cut short by the end of the file. */
  write_st(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
           4);
  int fd = open(path, O_WRONLY);
  CHECK(fd >= 0 && ftruncate(fd, 30) == 0);
  close(fd);
  CHECK(nn_safetensors_load(path, &st, &err) < 0);
  CHECK(strstr(err.msg, "exceeds the file size 30") != NULL);
  /* An implausible header length in a (sparse) file large enough. */
  unsigned char big[8] = {0x00, 0xe1, 0xf5, 0x07, 0, 0, 0, 0}; /* 133554432 */
  write_bytes(path, big, 8);
  fd = open(path, O_WRONLY);
  CHECK(fd >= 0 && ftruncate(fd, 200000000) == 0);
  close(fd);
  CHECK(nn_safetensors_load(path, &st, &err) < 0);
  CHECK(strstr(err.msg, "header length 133554432 is not plausible") != NULL);
  /* Missing file, directory. */
  CHECK(nn_safetensors_load(tpath("nope.safetensors"), &st, &err) < 0);
  CHECK(strstr(err.msg, "nope.safetensors: No such file or directory") != NULL);
  CHECK(nn_safetensors_load(dir, &st, &err) < 0);
  CHECK(strstr(err.msg, "not a regular file") != NULL);
  remove(path);
}

static void test_save_errors(void) {
  nn_error err;
  int64_t s1[1] = {2};
  nn_tensor *t = make(1, s1, 0.0f);
  nn_tensor *ts[] = {t, t};
  const char *path = tpath("e.safetensors");
  const char *dup[] = {"w", "w"};
  CHECK(nn_safetensors_save(path, 2, dup, ts, 0, NULL, NULL, &err) < 0);
  CHECK(strstr(err.msg, "duplicate tensor name 'w'") != NULL);
  const char *res[] = {"__metadata__"};
  CHECK(nn_safetensors_save(path, 1, res, ts, 0, NULL, NULL, &err) < 0);
  CHECK(strstr(err.msg, "'__metadata__' is reserved") != NULL);
  const char *bad[] = {"\xff"};
  CHECK(nn_safetensors_save(path, 1, bad, ts, 0, NULL, NULL, &err) < 0);
  CHECK(strstr(err.msg, "tensor name is not valid UTF-8") != NULL);
  const char *ok[] = {"w"}, *mk[] = {"k", "k"}, *mv[] = {"1", "2"};
  CHECK(nn_safetensors_save(path, 1, ok, ts, 2, mk, mv, &err) < 0);
  CHECK(strstr(err.msg, "duplicate metadata key 'k'") != NULL);
  const char *mv2[] = {"\xc3"};
  CHECK(nn_safetensors_save(path, 1, ok, ts, 1, mk, mv2, &err) < 0);
  CHECK(strstr(err.msg, "metadata value of 'k' is not valid UTF-8") != NULL);
  CHECK(access(path, F_OK) != 0); /* nothing was written */
  CHECK(count_temp_files() == 0);
  nn_tensor_release(t);
}

/* A failed write leaves the previous file intact and no temporary file. */
static void test_atomic(void) {
  nn_error err;
  int64_t shape[1] = {1 << 16};
  nn_tensor *old = make(1, shape, 1.0f), *neu = make(1, shape, 2.0f);
  const char *names[] = {"w"};
  const char *path = tpath("ck.safetensors");
  CHECK(nn_safetensors_save(path, 1, names, &old, 0, NULL, NULL, &err) == 0);
  size_t n0, n1;
  unsigned char *before = read_bytes(path, &n0);

  /* The write fails half way (file size limit: EFBIG). */
  struct rlimit saved, lim;
  getrlimit(RLIMIT_FSIZE, &saved);
  lim = saved;
  lim.rlim_cur = 4096;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  int rc = nn_safetensors_save(path, 1, names, &neu, 0, NULL, NULL, &err);
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, prev);
  CHECK(rc < 0);
  CHECK(strstr(err.msg, "cannot write") != NULL &&
        strstr(err.msg, "File too large") != NULL);
  unsigned char *after = read_bytes(path, &n1);
  CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
  free(after);
  CHECK(count_temp_files() == 0);

  /* The target is a directory: the rename fails. */
  const char *d = tpath("adir");
  CHECK(mkdir(d, 0777) == 0);
  rc = nn_safetensors_save(d, 1, names, &neu, 0, NULL, NULL, &err);
  CHECK(rc < 0 && strstr(err.msg, "cannot replace the file") != NULL);
  CHECK(count_temp_files() == 0);
  struct stat sb;
  CHECK(stat(d, &sb) == 0 && S_ISDIR(sb.st_mode));
  rmdir(d);

  /* The directory does not exist. */
  rc = nn_safetensors_save(tpath("no/such/dir/x.safetensors"), 1, names, &neu,
                           0, NULL, NULL, &err);
  CHECK(rc < 0 && strstr(err.msg, "cannot create the temporary file") != NULL);

  /* A read-only directory (meaningless as root, who may write anyway). */
  if (geteuid() != 0) {
    CHECK(chmod(dir, 0555) == 0);
    rc = nn_safetensors_save(path, 1, names, &neu, 0, NULL, NULL, &err);
    chmod(dir, 0755);
    CHECK(rc < 0 && strstr(err.msg, "Permission denied") != NULL);
    after = read_bytes(path, &n1);
    CHECK(after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);
  }
  CHECK(count_temp_files() == 0);

  /* And a successful write replaces the file. */
  CHECK(nn_safetensors_save(path, 1, names, &neu, 0, NULL, NULL, &err) == 0);
  nn_safetensors st;
  CHECK(nn_safetensors_load(path, &st, &err) == 0);
  CHECK(st.count == 1 && equal_exact(st.entries[0].tensor, neu));
  nn_safetensors_free(&st);
  free(before);
  nn_tensor_release(old);
  nn_tensor_release(neu);
  remove(path);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/nn_st_test_XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_json_parse_values);
  RUN(test_json_parse_errors);
  RUN(test_json_write);
  RUN(test_round_trip);
  RUN(test_header_bytes);
  RUN(test_known_bytes);
  RUN(test_corrupt);
  RUN(test_save_errors);
  RUN(test_atomic);
  rmdir(dir);
  return check_report("safetensors");
}
