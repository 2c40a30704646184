/*
 * csv.h - an RFC 4180 CSV reader: a header record, then data records of the
 * same field count; fields separated by commas; a field may be enclosed in
 * double quotes, and then may hold commas, line breaks and quotes (written
 * twice: "a ""b"" c").  Lines end with LF, CRLF or a lone CR.
 *
 * Beyond the RFC: a UTF-8 byte order mark at the start is skipped, and blank
 * lines (nothing between two line ends) are skipped.  Everything else that
 * breaks the grammar is an error naming the source and the line, e.g.
 * "HAM10000_metadata.csv:17: unterminated quoted field (opened on this line)":
 *   - an unterminated quoted field,
 *   - a quote inside an unquoted field,
 *   - anything but a comma or a line end after a closing quote,
 *   - a record whose field count differs from the header's,
 *   - a NUL byte (not a text file).
 *
 * The parsed table is one block of NUL-terminated field texts with offsets:
 * record r (0 = the header) has fields first[r] .. first[r+1]-1.  Fields are
 * kept exactly (no trimming, no type conversion).
 */
#ifndef NN_CSV_H
#define NN_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

/* Largest input accepted: 1 GiB. */
#define NN_CSV_MAX_BYTES ((int64_t)1 << 30)

typedef struct nn_csv {
  int64_t nrecords; /* records, the header (record 0) included */
  int64_t ncolumns; /* fields per record (the header's count) */
  int64_t *line;    /* [nrecords] 1-based line on which each record starts */
  int64_t *offset;  /* [nrecords*ncolumns] start of each field in text */
  int64_t *length;  /* [nrecords*ncolumns] byte length of each field */
  char *text;       /* field texts, each followed by a NUL */
} nn_csv;

/* Parses len bytes of CSV text.  `name` (e.g. the file name) prefixes error
 * messages.  Returns a new table owned by the caller (free with nn_csv_free),
 * or NULL with err set on malformed input (see above), an empty input (no
 * header), input larger than NN_CSV_MAX_BYTES, or out of memory. */
nn_csv *nn_csv_parse(const char *data, size_t len, const char *name,
                     nn_error *err);

/* Reads and parses the file at path; errors name the path (and the line).
 * Also fails when the file cannot be opened or read. */
nn_csv *nn_csv_read(const char *path, nn_error *err);

/* Frees a table; NULL is allowed. */
void nn_csv_free(nn_csv *csv);

/* The text of field col (0-based) of record rec (0 = header), unchecked;
 * borrowed from the table. */
static inline const char *nn_csv_field(const nn_csv *csv, int64_t rec,
                                       int64_t col) {
  return csv->text + csv->offset[rec * csv->ncolumns + col];
}

#endif
