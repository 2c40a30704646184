/*
 * csv.c - the RFC 4180 reader of csv.h: one pass over the bytes with a
 * small state machine, appending field texts to one growing block.
 */
#include "csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The table under construction. */
typedef struct builder {
  char *text;
  int64_t text_len, text_cap;
  int64_t *offset, *length;
  int64_t nfields, offset_cap, length_cap;
  int64_t *line;
  int64_t nrecords, records_cap;
} builder;

/* Grows *p (elements of size `size`, capacity *cap) to hold `need`. */
static int grow(void **p, int64_t *cap, int64_t need, size_t size,
                nn_error *err) {
  if (need <= *cap) return 0;
  int64_t n = *cap ? *cap : 64;
  while (n < need) n *= 2;
  void *q = realloc(*p, (size_t)n * size);
  if (!q) return nn_seterr(err, "out of memory reading CSV");
  *p = q;
  *cap = n;
  return 0;
}

/* Appends one byte of field text. */
static int put_byte(builder *b, char c, nn_error *err) {
  if (b->text_len == b->text_cap &&
      grow((void **)&b->text, &b->text_cap, b->text_len + 1, 1, err))
    return -1;
  b->text[b->text_len++] = c;
  return 0;
}

/* Ends the field that started at text offset `start`. */
static int end_field(builder *b, int64_t start, nn_error *err) {
  if (put_byte(b, '\0', err)) return -1;
  if (grow((void **)&b->offset, &b->offset_cap, b->nfields + 1,
           sizeof(int64_t), err) ||
      grow((void **)&b->length, &b->length_cap, b->nfields + 1,
           sizeof(int64_t), err))
    return -1;
  b->offset[b->nfields] = start;
  b->length[b->nfields] = b->text_len - 1 - start;
  b->nfields++;
  return 0;
}

/* Records that a record starting on `line` is complete. */
static int add_record(builder *b, int64_t line, nn_error *err) {
  if (grow((void **)&b->line, &b->records_cap, b->nrecords + 1,
           sizeof(int64_t), err))
    return -1;
  b->line[b->nrecords++] = line;
  return 0;
}

/* Frees what the builder holds (not b itself). */
static void builder_free(builder *b) {
  free(b->text);
  free(b->offset);
  free(b->length);
  free(b->line);
}

/* "'x'" for a printable byte, "byte 0xNN" otherwise. */
static void describe_byte(unsigned char c, char *buf, size_t n) {
  if (c >= 32 && c < 127)
    snprintf(buf, n, "'%c'", c);
  else
    snprintf(buf, n, "byte 0x%02x", c);
}

/* Parses one field starting at data[*pos] on line *line (advanced past
 * line breaks inside quotes).  Stops at the comma, line end or end of
 * input that follows the field, without consuming it. */
static int parse_field(builder *b, const char *data, size_t len, size_t *pos,
                       int64_t *line, int64_t column, const char *name,
                       nn_error *err) {
  size_t i = *pos;
  int64_t start = b->text_len;
  if (i < len && data[i] == '"') {
    int64_t open_line = *line;
    i++;
    for (;;) {
      if (i >= len)
        return nn_seterr(err,
                         "%s:%lld: unterminated quoted field (field %lld "
                         "opens a quote on this line that is never closed)",
                         name, (long long)open_line, (long long)column);
      char c = data[i];
      if (c == '"') {
        if (i + 1 < len && data[i + 1] == '"') {
          if (put_byte(b, '"', err)) return -1;
          i += 2;
          continue;
        }
        i++;
        break;
      }
      if (c == '\0')
        return nn_seterr(err, "%s:%lld: NUL byte (not a text file?)", name,
                         (long long)*line);
      if (put_byte(b, c, err)) return -1;
      i++;
      if (c == '\n' || (c == '\r' && !(i < len && data[i] == '\n')))
        (*line)++;
    }
    if (i < len && data[i] != ',' && data[i] != '\n' && data[i] != '\r') {
      char what[16];
      describe_byte((unsigned char)data[i], what, sizeof what);
      return nn_seterr(err,
                       "%s:%lld: unexpected %s after the closing quote of "
                       "field %lld (expected a comma or the end of the line)",
                       name, (long long)*line, what, (long long)column);
    }
  } else {
    while (i < len && data[i] != ',' && data[i] != '\n' && data[i] != '\r') {
      if (data[i] == '"')
        return nn_seterr(err,
                         "%s:%lld: quote inside unquoted field %lld (a field "
                         "holding quotes must be enclosed in quotes, with "
                         "each quote doubled)",
                         name, (long long)*line, (long long)column);
      if (data[i] == '\0')
        return nn_seterr(err, "%s:%lld: NUL byte (not a text file?)", name,
                         (long long)*line);
      if (put_byte(b, data[i], err)) return -1;
      i++;
    }
  }
  *pos = i;
  return end_field(b, start, err);
}

nn_csv *nn_csv_parse(const char *data, size_t len, const char *name,
                     nn_error *err) {
  if (!name) name = "CSV";
  if ((int64_t)len > NN_CSV_MAX_BYTES) {
    nn_seterr(err, "%s: too large (%.0f MiB; the limit is %lld MiB)", name,
              (double)len / (1 << 20), (long long)(NN_CSV_MAX_BYTES >> 20));
    return NULL;
  }
  builder b = {0};
  size_t i = 0;
  int64_t line = 1, ncolumns = 0;
  if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) i = 3;
  while (i < len) {
    if (data[i] == '\n' || data[i] == '\r') { /* blank line */
      i += (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') ? 2 : 1;
      line++;
      continue;
    }
    int64_t record_line = line, nf = 0;
    for (;;) {
      if (parse_field(&b, data, len, &i, &line, nf + 1, name, err)) goto fail;
      nf++;
      if (i < len && data[i] == ',') {
        i++;
        continue;
      }
      if (i < len) { /* the line end closing the record */
        i += (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') ? 2 : 1;
        line++;
      }
      break;
    }
    if (b.nrecords == 0) {
      ncolumns = nf;
    } else if (nf != ncolumns) {
      nn_seterr(err, "%s:%lld: expected %lld fields (as in the header), got "
                "%lld",
                name, (long long)record_line, (long long)ncolumns,
                (long long)nf);
      goto fail;
    }
    if (add_record(&b, record_line, err)) goto fail;
  }
  if (b.nrecords == 0) {
    nn_seterr(err, "%s: empty file (no header row)", name);
    goto fail;
  }
  nn_csv *csv = malloc(sizeof *csv);
  if (!csv) {
    nn_seterr(err, "out of memory reading CSV");
    goto fail;
  }
  csv->nrecords = b.nrecords;
  csv->ncolumns = ncolumns;
  csv->line = b.line;
  csv->offset = b.offset;
  csv->length = b.length;
  csv->text = b.text;
  return csv;
fail:
  builder_free(&b);
  return NULL;
}

nn_csv *nn_csv_read(const char *path, nn_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    nn_seterr(err, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  int64_t n = 0, cap = 0;
  for (;;) {
    if (grow((void **)&buf, &cap, n + 65536, 1, err)) goto fail;
    size_t got = fread(buf + n, 1, (size_t)(cap - n), f);
    n += (int64_t)got;
    if (n > NN_CSV_MAX_BYTES) {
      nn_seterr(err, "%s: too large (the limit is %lld MiB)", path,
                (long long)(NN_CSV_MAX_BYTES >> 20));
      goto fail;
    }
    if (got == 0) break;
  }
  if (ferror(f)) {
    nn_seterr(err, "%s: read error: %s", path, strerror(errno));
    goto fail;
  }
  fclose(f);
  nn_csv *csv = nn_csv_parse(buf ? buf : "", (size_t)n, path, err);
  free(buf);
  return csv;
fail:
  free(buf);
  fclose(f);
  return NULL;
}

void nn_csv_free(nn_csv *csv) {
  if (!csv) return;
  free(csv->line);
  free(csv->offset);
  free(csv->length);
  free(csv->text);
  free(csv);
}
