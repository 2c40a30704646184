/*
 * idx.h - reading image/label pairs in the IDX format of MNIST and
 * Fashion-MNIST, gzipped or plain (zlib reads both).
 *
 * An images file is a big-endian header (magic 0x00000803, count, rows,
 * cols) followed by count*rows*cols uint8 pixels; a labels file is a header
 * (magic 0x00000801, count) followed by count uint8 labels.
 */
#ifndef NN_IDX_H
#define NN_IDX_H

#include "imagestore.h"
#include "tensor.h"

#define NN_IDX_IMAGES_MAGIC 0x00000803u
#define NN_IDX_LABELS_MAGIC 0x00000801u
/* Largest accepted declared sizes. */
#define NN_IDX_MAX_SIDE 4096
#define NN_IDX_MAX_COUNT ((int64_t)100000000)
/* Largest accepted label value (255 is reserved as invalid). */
#define NN_IDX_MAX_LABEL 254

/* Reads an images file and its labels file into a new 1-channel store
 * (n images of rows x cols, labels as stored, 0-based).  Both headers are
 * read and checked before anything is allocated: magic numbers, rows and
 * cols in 1..NN_IDX_MAX_SIDE, counts in 0..NN_IDX_MAX_COUNT and equal in the
 * two files.  Each file must then hold exactly the declared data (a short or
 * over-long file is an error), and every label must be in
 * 0..NN_IDX_MAX_LABEL.  Returns an owned store, or NULL with an error
 * message that begins with the path of the offending file. */
nn_imagestore *nn_idx_load(const char *images_path, const char *labels_path,
                           nn_error *err);

#endif
