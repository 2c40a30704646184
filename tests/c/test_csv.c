/*
 * test_csv.c - the RFC 4180 reader: quoting, line ends, line numbers, and
 * every malformed case with its file:line message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../runtime/csv.h"
#include "check.h"

static nn_csv *parse(const char *s, nn_error *err) {
  return nn_csv_parse(s, strlen(s), "t.csv", err);
}

static int field_is(const nn_csv *c, int64_t r, int64_t k, const char *want) {
  return strcmp(nn_csv_field(c, r, k), want) == 0 &&
         c->length[r * c->ncolumns + k] == (int64_t)strlen(want);
}

static void test_simple(void) {
  nn_error err;
  nn_csv *c = parse("a,b,c\n1,2,3\n4,,6\n", &err);
  CHECK(c != NULL);
  if (!c) return;
  CHECK(c->nrecords == 3 && c->ncolumns == 3);
  CHECK(field_is(c, 0, 0, "a") && field_is(c, 0, 2, "c"));
  CHECK(field_is(c, 1, 1, "2") && field_is(c, 2, 1, ""));
  CHECK(c->line[0] == 1 && c->line[1] == 2 && c->line[2] == 3);
  nn_csv_free(c);
}

static void test_line_ends(void) {
  const char *inputs[] = {"x,y\r\n1,2\r\n3,4\r\n", "x,y\r1,2\r3,4", "x,y\n1,2\n3,4"};
  for (int t = 0; t < 3; t++) {
    nn_error err;
    nn_csv *c = parse(inputs[t], &err);
    CHECK(c != NULL);
    if (!c) continue;
    CHECK(c->nrecords == 3);
    CHECK(field_is(c, 1, 1, "2") && field_is(c, 2, 0, "3") && field_is(c, 2, 1, "4"));
    CHECK(c->line[2] == 3);
    nn_csv_free(c);
  }
}

static void test_quotes(void) {
  nn_error err;
  const char *s =
      "id,text,n\n"
      "1,\"a, b\",2\n"
      "2,\"say \"\"hi\"\"\",3\n"
      "3,\"two\nlines\r\nthree\",4\n"
      "4,\"\",5\n"
      "5,\"\"\"\",6\n";
  nn_csv *c = parse(s, &err);
  CHECK(c != NULL);
  if (!c) {
    fprintf(stderr, "%s\n", err.msg);
    return;
  }
  CHECK(c->nrecords == 6);
  CHECK(field_is(c, 1, 1, "a, b"));
  CHECK(field_is(c, 2, 1, "say \"hi\""));
  CHECK(field_is(c, 3, 1, "two\nlines\r\nthree"));
  CHECK(field_is(c, 4, 1, ""));
  CHECK(field_is(c, 5, 1, "\""));
  /* Records after a 3-line field start 2 lines later. */
  CHECK(c->line[3] == 4 && c->line[4] == 7 && c->line[5] == 8);
  nn_csv_free(c);
}

static void test_extras(void) {
  nn_error err;
  /* BOM, blank lines, no final newline, trailing empty field. */
  nn_csv *c = parse("\xEF\xBB\xBFh1,h2\n\n1,\n\r\n2,x", &err);
  CHECK(c != NULL);
  if (!c) return;
  CHECK(c->nrecords == 3 && field_is(c, 0, 0, "h1"));
  CHECK(field_is(c, 1, 1, "") && field_is(c, 2, 1, "x"));
  CHECK(c->line[1] == 3 && c->line[2] == 5);
  nn_csv_free(c);
  /* A header alone is a table with no data records. */
  c = parse("only,header", &err);
  CHECK(c != NULL && c->nrecords == 1 && c->ncolumns == 2);
  nn_csv_free(c);
  /* Spaces are data. */
  c = parse("a\n b \n", &err);
  CHECK(c != NULL && field_is(c, 1, 0, " b "));
  nn_csv_free(c);
}

/* Each malformed input and the exact message it gets. */
static void test_errors(void) {
  struct {
    const char *in, *msg;
  } cases[] = {
      {"a,b\n1,\"open\n2,3\n",
       "t.csv:2: unterminated quoted field (field 2 opens a quote on this "
       "line that is never closed)"},
      {"a,b\n1,ab\"c\n",
       "t.csv:2: quote inside unquoted field 2 (a field holding quotes must "
       "be enclosed in quotes, with each quote doubled)"},
      {"a,b\n\"x\n y\"z,1\n",
       "t.csv:3: unexpected 'z' after the closing quote of field 1 (expected "
       "a comma or the end of the line)"},
      {"a,b\n\"x\" ,1\n",
       "t.csv:2: unexpected ' ' after the closing quote of field 1 (expected "
       "a comma or the end of the line)"},
      {"a,b,c\n1,2,3\n\n4,5\n", "t.csv:4: expected 3 fields (as in the header), got 2"},
      {"a,b\n1,2,3\n", "t.csv:2: expected 2 fields (as in the header), got 3"},
      {"", "t.csv: empty file (no header row)"},
      {"\n\r\n", "t.csv: empty file (no header row)"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    nn_error err = {{0}};
    nn_csv *c = parse(cases[k].in, &err);
    CHECK(c == NULL);
    if (strcmp(err.msg, cases[k].msg) != 0) {
      fprintf(stderr, "case %zu: got \"%s\"\n", k, err.msg);
      CHECK(!"message");
    }
    nn_csv_free(c);
  }
  nn_error err;
  const char nul[] = "a,b\n1,x\0y\n";
  CHECK(nn_csv_parse(nul, sizeof nul - 1, "t.csv", &err) == NULL);
  CHECK(strcmp(err.msg, "t.csv:2: NUL byte (not a text file?)") == 0);
  const char bin[] = "a,\"b\x01\"\x02\n";
  CHECK(nn_csv_parse(bin, sizeof bin - 1, "t.csv", &err) == NULL);
  CHECK(strstr(err.msg, "unexpected byte 0x02 after the closing quote") != NULL);
}

static void test_file(void) {
  char path[] = "/tmp/test_csv_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  const char *s = "lesion_id,image_id,dx\r\nHAM_1,ISIC_1,nv\r\nHAM_1,ISIC_2,\"n,v\"\r\n";
  CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
  close(fd);
  nn_error err;
  nn_csv *c = nn_csv_read(path, &err);
  CHECK(c != NULL);
  if (c) {
    CHECK(c->nrecords == 3 && c->ncolumns == 3 && field_is(c, 2, 2, "n,v"));
    nn_csv_free(c);
  }
  /* Error messages carry the path. */
  FILE *f = fopen(path, "wb");
  fputs("a,b\n1,2\n3\n", f);
  fclose(f);
  CHECK(nn_csv_read(path, &err) == NULL);
  char want[128];
  snprintf(want, sizeof want, "%s:3: expected 2 fields (as in the header), got 1", path);
  CHECK(strcmp(err.msg, want) == 0);
  unlink(path);
  CHECK(nn_csv_read(path, &err) == NULL);
  CHECK(strstr(err.msg, "cannot open: No such file or directory") != NULL);
}

/* A larger table: many records, growth of every buffer. */
static void test_many(void) {
  size_t cap = 1 << 20, n = 0;
  char *s = malloc(cap);
  n += (size_t)snprintf(s + n, cap - n, "k,v\n");
  for (int i = 0; i < 20000; i++)
    n += (size_t)snprintf(s + n, cap - n, "%d,\"v%d\"\n", i, i);
  nn_error err;
  nn_csv *c = nn_csv_parse(s, n, "big.csv", &err);
  CHECK(c != NULL && c->nrecords == 20001);
  if (c) {
    CHECK(field_is(c, 20000, 1, "v19999") && c->line[20000] == 20001);
    nn_csv_free(c);
  }
  free(s);
}

int main(void) {
  RUN(test_simple);
  RUN(test_line_ends);
  RUN(test_quotes);
  RUN(test_extras);
  RUN(test_errors);
  RUN(test_file);
  RUN(test_many);
  return check_report("csv");
}
