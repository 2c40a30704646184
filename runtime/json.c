/*
 * json.c - strict JSON reader (recursive descent into nn_json trees) and a
 * small writer.  See json.h.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;      /* no overlongs */
    if (c == 0xED) hi = 0x9F;      /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;      /* no overlongs */
    if (c == 0xF4) hi = 0x8F;      /* at most U+10FFFF */
  } else {
    return 0;
  }
  if (n < len) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return len;
}

int nn_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    size_t k = utf8_seq(p + i, n - i);
    if (k == 0) return 0;
    i += k;
  }
  return 1;
}

/* ---- Reader ---- */

typedef struct parser {
  const char *s;
  size_t n, pos;
  int flags;
  int depth;
  nn_error *err;
} parser;

static int fail(parser *p, size_t at, const char *what) {
  return nn_seterr(p->err, "at byte %zu: %s", at, what);
}

static void skip_ws(parser *p) {
  while (p->pos < p->n) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

/* 1 when the text at pos starts with the literal word w (consumed). */
static int accept_word(parser *p, const char *w) {
  size_t k = strlen(w);
  if (p->n - p->pos < k || memcmp(p->s + p->pos, w, k) != 0) return 0;
  p->pos += k;
  return 1;
}

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned)(c - 'A' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *d, unsigned cp) {
  if (cp < 0x80) {
    d[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    d[0] = (char)(0xC0 | (cp >> 6));
    d[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    d[0] = (char)(0xE0 | (cp >> 12));
    d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  d[0] = (char)(0xF0 | (cp >> 18));
  d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  d[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Parses a string at pos (which holds '"') into a new NUL-terminated
 * buffer *out of *len bytes.  Decoded text is never longer than the
 * source, so one allocation of the source span suffices. */
static int parse_string(parser *p, char **out, size_t *len) {
  size_t start = p->pos++;
  size_t end = p->pos;
  /* Find the closing quote to size the buffer. */
  while (end < p->n && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
  if (end >= p->n) return fail(p, start, "unterminated string");
  char *d = malloc(end - p->pos + 1);
  if (!d) return fail(p, start, "out of memory");
  size_t k = 0;
  while (p->s[p->pos] != '"') {
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c < 0x20) {
      free(d);
      return fail(p, p->pos, "control character in a string (must be escaped)");
    }
    if (c != '\\') {
      size_t m = utf8_seq((const unsigned char *)p->s + p->pos, end - p->pos);
      if (m == 0) {
        free(d);
        return fail(p, p->pos, "invalid UTF-8 in a string");
      }
      memcpy(d + k, p->s + p->pos, m);
      k += m;
      p->pos += m;
      continue;
    }
    size_t esc = p->pos++;
    char e = p->s[p->pos++];
    switch (e) {
    case '"': d[k++] = '"'; break;
    case '\\': d[k++] = '\\'; break;
    case '/': d[k++] = '/'; break;
    case 'b': d[k++] = '\b'; break;
    case 'f': d[k++] = '\f'; break;
    case 'n': d[k++] = '\n'; break;
    case 'r': d[k++] = '\r'; break;
    case 't': d[k++] = '\t'; break;
    case 'u': {
      unsigned cp, lo;
      if (end - p->pos < 4 || hex4(p->s + p->pos, &cp) < 0) {
        free(d);
        return fail(p, esc, "bad \\u escape (expected 4 hex digits)");
      }
      p->pos += 4;
      if (cp >= 0xDC00 && cp <= 0xDFFF) {
        free(d);
        return fail(p, esc, "lone low surrogate in a \\u escape");
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - p->pos < 6 || p->s[p->pos] != '\\' ||
            p->s[p->pos + 1] != 'u' || hex4(p->s + p->pos + 2, &lo) < 0 ||
            lo < 0xDC00 || lo > 0xDFFF) {
          free(d);
          return fail(p, esc, "high surrogate not followed by a low one");
        }
        p->pos += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      k += put_utf8(d + k, cp);
      break;
    }
    default:
      free(d);
      return fail(p, esc, "invalid escape in a string");
    }
  }
  p->pos++; /* closing quote */
  d[k] = '\0';
  *out = d;
  *len = k;
  return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Number grammar of RFC 8259; keeps the source text. */
static int parse_number(parser *p, nn_json *v) {
  size_t start = p->pos, i = p->pos;
  if (i < p->n && p->s[i] == '-') i++;
  if ((p->flags & NN_JSON_NONFINITE) && p->n - i >= 8 &&
      memcmp(p->s + i, "Infinity", 8) == 0) {
    i += 8;
  } else {
    if (i >= p->n || !is_digit(p->s[i]))
      return fail(p, start, "expected a digit");
    if (p->s[i] == '0') {
      i++;
      if (i < p->n && is_digit(p->s[i]))
        return fail(p, start, "leading zero in a number");
    } else {
      while (i < p->n && is_digit(p->s[i])) i++;
    }
    if (i < p->n && p->s[i] == '.') {
      i++;
      if (i >= p->n || !is_digit(p->s[i]))
        return fail(p, i, "expected a digit after '.'");
      while (i < p->n && is_digit(p->s[i])) i++;
    }
    if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
      i++;
      if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
      if (i >= p->n || !is_digit(p->s[i]))
        return fail(p, i, "expected a digit in the exponent");
      while (i < p->n && is_digit(p->s[i])) i++;
    }
  }
  v->str = malloc(i - start + 1);
  if (!v->str) return fail(p, start, "out of memory");
  memcpy(v->str, p->s + start, i - start);
  v->str[i - start] = '\0';
  v->len = i - start;
  v->type = NN_JSON_NUMBER;
  p->pos = i;
  return 0;
}

static int parse_value(parser *p, nn_json *v);

static int parse_array(parser *p, nn_json *v) {
  size_t cap = 0;
  v->type = NN_JSON_ARRAY;
  p->pos++; /* '[' */
  skip_ws(p);
  if (p->pos < p->n && p->s[p->pos] == ']') {
    p->pos++;
    return 0;
  }
  for (;;) {
    if (v->len == cap) {
      size_t nc = cap ? 2 * cap : 4;
      nn_json *ni = realloc(v->items, nc * sizeof *ni);
      if (!ni) return fail(p, p->pos, "out of memory");
      v->items = ni;
      cap = nc;
    }
    nn_json *item = &v->items[v->len];
    memset(item, 0, sizeof *item);
    v->len++;
    if (parse_value(p, item) < 0) return -1;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->pos < p->n && p->s[p->pos] == ']') {
      p->pos++;
      return 0;
    }
    return fail(p, p->pos, "expected ',' or ']' in an array");
  }
}

static int parse_object(parser *p, nn_json *v) {
  size_t cap = 0;
  v->type = NN_JSON_OBJECT;
  p->pos++; /* '{' */
  skip_ws(p);
  if (p->pos < p->n && p->s[p->pos] == '}') {
    p->pos++;
    return 0;
  }
  for (;;) {
    skip_ws(p);
    if (p->pos >= p->n || p->s[p->pos] != '"')
      return fail(p, p->pos, "expected a string key in an object");
    if (v->len == cap) {
      size_t nc = cap ? 2 * cap : 4;
      nn_json_member *nm = realloc(v->members, nc * sizeof *nm);
      if (!nm) return fail(p, p->pos, "out of memory");
      v->members = nm;
      cap = nc;
    }
    nn_json_member *m = &v->members[v->len];
    memset(m, 0, sizeof *m);
    v->len++;
    if (parse_string(p, &m->key, &m->key_len) < 0) return -1;
    skip_ws(p);
    if (p->pos >= p->n || p->s[p->pos] != ':')
      return fail(p, p->pos, "expected ':' after an object key");
    p->pos++;
    if (parse_value(p, &m->value) < 0) return -1;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->pos < p->n && p->s[p->pos] == '}') {
      p->pos++;
      return 0;
    }
    return fail(p, p->pos, "expected ',' or '}' in an object");
  }
}

static int parse_value(parser *p, nn_json *v) {
  skip_ws(p);
  v->offset = p->pos;
  if (p->pos >= p->n) return fail(p, p->pos, "unexpected end of text");
  char c = p->s[p->pos];
  int r;
  switch (c) {
  case '{':
  case '[':
    if (++p->depth > NN_JSON_MAX_DEPTH)
      return fail(p, p->pos, "nesting too deep");
    r = c == '{' ? parse_object(p, v) : parse_array(p, v);
    p->depth--;
    return r;
  case '"':
    v->type = NN_JSON_STRING;
    return parse_string(p, &v->str, &v->len);
  case 't':
    if (accept_word(p, "true")) {
      v->type = NN_JSON_TRUE;
      return 0;
    }
    break;
  case 'f':
    if (accept_word(p, "false")) {
      v->type = NN_JSON_FALSE;
      return 0;
    }
    break;
  case 'n':
    if (accept_word(p, "null")) {
      v->type = NN_JSON_NULL;
      return 0;
    }
    break;
  case 'N':
    if ((p->flags & NN_JSON_NONFINITE) && accept_word(p, "NaN")) {
      v->type = NN_JSON_NUMBER;
      v->str = malloc(4);
      if (!v->str) return fail(p, v->offset, "out of memory");
      memcpy(v->str, "NaN", 4);
      v->len = 3;
      return 0;
    }
    break;
  default:
    if (c == '-' || is_digit(c) || c == 'I') return parse_number(p, v);
  }
  return fail(p, p->pos, "expected a value");
}

int nn_json_parse(const char *text, size_t len, int flags, nn_json *out,
                  nn_error *err) {
  parser p = {text, len, 0, flags, 0, err};
  memset(out, 0, sizeof *out);
  if (parse_value(&p, out) < 0) {
    nn_json_free(out);
    return -1;
  }
  skip_ws(&p);
  if (p.pos != p.n) {
    nn_json_free(out);
    return fail(&p, p.pos, "unexpected text after the value");
  }
  return 0;
}

void nn_json_free(nn_json *v) {
  if (!v) return;
  if (v->type == NN_JSON_ARRAY)
    for (size_t i = 0; i < v->len; i++) nn_json_free(&v->items[i]);
  if (v->type == NN_JSON_OBJECT)
    for (size_t i = 0; i < v->len; i++) {
      free(v->members[i].key);
      nn_json_free(&v->members[i].value);
    }
  free(v->str);
  free(v->items);
  free(v->members);
  memset(v, 0, sizeof *v);
}

const nn_json *nn_json_get(const nn_json *obj, const char *key) {
  if (!obj || obj->type != NN_JSON_OBJECT) return NULL;
  size_t k = strlen(key);
  for (size_t i = 0; i < obj->len; i++)
    if (obj->members[i].key_len == k && memcmp(obj->members[i].key, key, k) == 0)
      return &obj->members[i].value;
  return NULL;
}

int64_t nn_json_find_duplicate(const nn_json *obj) {
  if (!obj || obj->type != NN_JSON_OBJECT || obj->len < 2) return -1;
  size_t *idx = malloc(obj->len * sizeof *idx);
  if (!idx) return -2;
  for (size_t i = 0; i < obj->len; i++) idx[i] = i;
  /* A merge sort by (key, index): qsort has no context argument. */
  size_t *tmp = malloc(obj->len * sizeof *tmp);
  if (!tmp) {
    free(idx);
    return -2;
  }
  for (size_t width = 1; width < obj->len; width *= 2) {
    for (size_t lo = 0; lo < obj->len; lo += 2 * width) {
      size_t mid = lo + width < obj->len ? lo + width : obj->len;
      size_t hi = lo + 2 * width < obj->len ? lo + 2 * width : obj->len;
      size_t a = lo, b = mid, k = lo;
      while (a < mid && b < hi) {
        const nn_json_member *x = &obj->members[idx[a]];
        const nn_json_member *y = &obj->members[idx[b]];
        size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
        int c = memcmp(x->key, y->key, n);
        if (c == 0) c = (x->key_len > y->key_len) - (x->key_len < y->key_len);
        if (c == 0) c = idx[a] < idx[b] ? -1 : 1;
        tmp[k++] = c <= 0 ? idx[a++] : idx[b++];
      }
      while (a < mid) tmp[k++] = idx[a++];
      while (b < hi) tmp[k++] = idx[b++];
    }
    size_t *t = idx;
    idx = tmp;
    tmp = t;
  }
  int64_t dup = -1;
  for (size_t i = 1; i < obj->len; i++) {
    const nn_json_member *x = &obj->members[idx[i - 1]];
    const nn_json_member *y = &obj->members[idx[i]];
    if (x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0) {
      if (dup < 0 || (int64_t)idx[i] < dup) dup = (int64_t)idx[i];
    }
  }
  free(idx);
  free(tmp);
  return dup;
}

int nn_json_to_u64(const nn_json *v, uint64_t *out) {
  if (!v || v->type != NN_JSON_NUMBER || v->len == 0) return -1;
  uint64_t x = 0;
  for (size_t i = 0; i < v->len; i++) {
    char c = v->str[i];
    if (!is_digit(c)) return -1;
    unsigned d = (unsigned)(c - '0');
    if (x > (UINT64_MAX - d) / 10) return -1;
    x = x * 10 + d;
  }
  *out = x;
  return 0;
}

const char *nn_json_typename(nn_json_type t) {
  switch (t) {
  case NN_JSON_NULL: return "null";
  case NN_JSON_FALSE:
  case NN_JSON_TRUE: return "boolean";
  case NN_JSON_NUMBER: return "number";
  case NN_JSON_STRING: return "string";
  case NN_JSON_ARRAY: return "array";
  case NN_JSON_OBJECT: return "object";
  }
  return "?";
}

/* ---- Writer ---- */

void nn_jbuf_init(nn_jbuf *b) { memset(b, 0, sizeof *b); }

void nn_jbuf_free(nn_jbuf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

static int reserve(nn_jbuf *b, size_t extra) {
  if (b->failed) return -1;
  if (b->len + extra + 1 <= b->cap) return 0;
  size_t nc = b->cap ? b->cap : 256;
  while (nc < b->len + extra + 1) {
    if (nc > SIZE_MAX / 2) {
      b->failed = 1;
      return -1;
    }
    nc *= 2;
  }
  char *d = realloc(b->data, nc);
  if (!d) {
    b->failed = 1;
    return -1;
  }
  b->data = d;
  b->cap = nc;
  return 0;
}

void nn_jbuf_raw(nn_jbuf *b, const char *s, size_t n) {
  if (reserve(b, n) < 0) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void nn_jbuf_puts(nn_jbuf *b, const char *s) { nn_jbuf_raw(b, s, strlen(s)); }

int nn_jbuf_string(nn_jbuf *b, const char *s, size_t n) {
  if (!nn_utf8_valid(s, n)) return -1;
  nn_jbuf_raw(b, "\"", 1);
  size_t run = 0; /* start of the pending run of plain bytes */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    nn_jbuf_raw(b, s + run, i - run);
    run = i + 1;
    char esc[8];
    switch (c) {
    case '"': nn_jbuf_raw(b, "\\\"", 2); break;
    case '\\': nn_jbuf_raw(b, "\\\\", 2); break;
    case '\n': nn_jbuf_raw(b, "\\n", 2); break;
    case '\r': nn_jbuf_raw(b, "\\r", 2); break;
    case '\t': nn_jbuf_raw(b, "\\t", 2); break;
    case '\b': nn_jbuf_raw(b, "\\b", 2); break;
    case '\f': nn_jbuf_raw(b, "\\f", 2); break;
    default:
      snprintf(esc, sizeof esc, "\\u%04x", c);
      nn_jbuf_raw(b, esc, 6);
    }
  }
  nn_jbuf_raw(b, s + run, n - run);
  nn_jbuf_raw(b, "\"", 1);
  return 0;
}

void nn_jbuf_u64(nn_jbuf *b, uint64_t v) {
  char s[24];
  int k = snprintf(s, sizeof s, "%llu", (unsigned long long)v);
  nn_jbuf_raw(b, s, (size_t)k);
}

void nn_jbuf_i64(nn_jbuf *b, int64_t v) {
  char s[24];
  int k = snprintf(s, sizeof s, "%lld", (long long)v);
  nn_jbuf_raw(b, s, (size_t)k);
}

void nn_jbuf_double(nn_jbuf *b, double v) {
  if (isnan(v)) {
    nn_jbuf_puts(b, "NaN");
    return;
  }
  if (isinf(v)) {
    nn_jbuf_puts(b, v < 0 ? "-Infinity" : "Infinity");
    return;
  }
  char s[40];
  int k = 0;
  for (int prec = 15; prec <= 17; prec++) {
    k = snprintf(s, sizeof s, "%.*g", prec, v);
    /* A locale with a decimal comma would break JSON: use '.'. */
    for (int i = 0; i < k; i++)
      if (s[i] == ',') s[i] = '.';
    if (strtod(s, NULL) == v) break;
  }
  if (!strpbrk(s, ".eE")) {
    s[k++] = '.';
    s[k++] = '0';
    s[k] = '\0';
  }
  nn_jbuf_raw(b, s, (size_t)k);
}
