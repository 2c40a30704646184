/*
 * safetensors.h - reading and writing the safetensors format.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}, ...}
 * and the data buffer: each tensor's little-endian, row-major bytes at
 * [b, e) of the buffer.  The tensors cover the buffer exactly, without
 * gaps or overlaps.
 *
 * Writing produces what the reference implementation (and so PyTorch's
 * safetensors.torch.save_file) produces: F32 tensors sorted by name, laid
 * out in that order, "__metadata__" first with sorted keys, compact JSON
 * padded with spaces to a multiple of 8 bytes.  The write is atomic: the
 * file is written to "<path>.tmp.<pid>" in the same directory, synced, and
 * renamed over path; on failure the temporary file is removed and an
 * existing file at path is left untouched.
 *
 * Reading accepts F32, F16, BF16, F64, I64, I32, I16, I8, U8, U16, U32, U64
 * and BOOL tensors and converts them to float32.  The whole header is
 * validated before any tensor is allocated; every message starts with the
 * path: "model.safetensors: header length 123456789 exceeds the file size
 * 1024".
 */
#ifndef NN_SAFETENSORS_H
#define NN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

/* Largest header the reader accepts, as the reference implementation. */
#define NN_ST_MAX_HEADER 100000000ULL

/* One tensor of a file, as described by its header. */
typedef struct nn_st_entry {
  char *name;    /* NUL-terminated, UTF-8 */
  char dtype[8]; /* as in the file: "F32", "BF16", ... */
  int ndim;      /* 0 for a scalar */
  int64_t shape[NN_MAX_DIMS];
  uint64_t begin, end; /* byte range in the data buffer */
  nn_tensor *tensor;   /* float32 contents (owned); NULL after inspect */
} nn_st_entry;

/* The contents of a file.  Entries and metadata are in header order. */
typedef struct nn_safetensors {
  int64_t count;
  nn_st_entry *entries;
  int64_t meta_count;
  char **meta_keys;        /* NUL-terminated */
  char **meta_values;      /* NUL-terminated; may hold NULs: see lens */
  size_t *meta_value_lens; /* in bytes */
  uint64_t header_len;     /* N, the JSON header's length in bytes */
  uint64_t data_len;       /* size of the data buffer in bytes */
} nn_safetensors;

/* Reads and validates the header of the file at path into *st (tensors
 * left NULL).  Fails, with *st empty, when the file cannot be read or is
 * not a valid safetensors file: header length past the end of the file or
 * above NN_ST_MAX_HEADER, invalid JSON (the message gives the byte), an
 * unsupported dtype, a shape that disagrees with the byte range, offsets
 * out of range, overlapping or leaving gaps in the buffer, duplicate
 * names, non-string metadata, more than NN_MAX_DIMS dimensions. */
int nn_safetensors_inspect(const char *path, nn_safetensors *st,
                           nn_error *err);

/* nn_safetensors_inspect, then reads every tensor into a new contiguous
 * float32 tensor of its shape (converted from its dtype).  Fails as
 * inspect does, or on a read error or out of memory; *st is then empty.
 * Release with nn_safetensors_free. */
int nn_safetensors_load(const char *path, nn_safetensors *st, nn_error *err);

/* Releases everything st owns (tensors included) and empties it. */
void nn_safetensors_free(nn_safetensors *st);

/* Writes count tensors (any strides; saved as contiguous F32) under the
 * given names, and meta_count metadata pairs (NUL-terminated strings; the
 * arrays may be NULL when meta_count is 0), atomically to path.  Fails on
 * a duplicate or non-UTF-8 name, the reserved name "__metadata__", a
 * duplicate or non-UTF-8 metadata key or value, or an I/O error (the
 * message names the file and the system's reason); path is then unchanged
 * and no temporary file remains. */
int nn_safetensors_save(const char *path, int64_t count,
                        const char *const *names, nn_tensor *const *tensors,
                        int64_t meta_count, const char *const *meta_keys,
                        const char *const *meta_values, nn_error *err);

#endif
