# nnlua - build, test and benchmark.
#   make              build/nnlua, build/libnnlua.a, build/nn.so (Lua module)
#   make test         install missing Debian packages (as root), build, run
#                     every test; ends with "N passed, N failed"
#   make test SANITIZE=1   the same under AddressSanitizer + UBSan (build-asan/)
#   make demo         train the default model (fmnist_cnn, 3 epochs) on the
#                     real Fashion-MNIST data, installing what is missing
#   make deps         only check/install the Debian packages
#   make clean

CC      ?= gcc
SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD   := build-asan
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
BUILD   := build
OPT     := -O2 -g
endif

LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIBS   := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
BLAS_LIBS  := -lopenblas
IMG_LIBS   := -lpng -lturbojpeg

CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L -fopenmp -fPIC -Wall -Wextra \
           $(OPT) $(LUA_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -fopenmp $(OPT)
LIBS    := $(LUA_LIBS) $(BLAS_LIBS) $(IMG_LIBS) -lz -lm -ldl

RUNTIME_SRC := $(wildcard runtime/*.c)
BINDING_SRC := $(filter-out lua/nnlua.c,$(wildcard lua/*.c))
LUA_LIB_SRC := $(sort $(wildcard lua/nn/*.lua))
RUNTIME_OBJ := $(RUNTIME_SRC:%.c=$(BUILD)/%.o)
BINDING_OBJ := $(BINDING_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/lua_sources.o
C_TESTS     := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(wildcard tests/c/test_*.c))

.PHONY: all test deps clean demo
all: $(BUILD)/nnlua $(BUILD)/libnnlua.a $(BUILD)/nn.so $(C_TESTS)

$(BUILD)/%.o: %.c $(wildcard runtime/*.h lua/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The Winograd transforms only vectorise well at -O3 (measured 2x faster).
ifneq ($(SANITIZE),1)
$(BUILD)/runtime/winograd.o: CFLAGS += -O3
# The optimizers' elementwise loops (sqrt, divide) vectorise only at -O3
# without errno for sqrt (their arguments are never negative).
$(BUILD)/runtime/optim.o: CFLAGS += -O3 -fno-math-errno
$(BUILD)/runtime/activation.o $(BUILD)/runtime/pool.o $(BUILD)/runtime/norm.o $(BUILD)/runtime/conv.o: CFLAGS += -O3
endif

$(BUILD)/tools/embed_lua: tools/embed_lua.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra $< -o $@

$(BUILD)/gen/lua_sources.c: $(BUILD)/tools/embed_lua $(LUA_LIB_SRC)
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed_lua $@ $(LUA_LIB_SRC)

$(BUILD)/gen/lua_sources.o: $(BUILD)/gen/lua_sources.c
	$(CC) $(CFLAGS) -c $< -o $@

# The static library holds the runtime, the binding and the embedded Lua
# library: everything an embedding program needs besides Lua and BLAS.
$(BUILD)/libnnlua.a: $(RUNTIME_OBJ) $(BINDING_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libnnruntime.a: $(RUNTIME_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/nnlua: $(BUILD)/lua/nnlua.o $(BUILD)/libnnlua.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS)

# Lua module for a stock lua5.4: require "nn" finds build/nn.so on cpath.
# -z nodelete: lua_close unloads C modules, and unloading libgomp with it
# while OpenMP's worker threads still wait inside would crash at exit.
$(BUILD)/nn.so: $(RUNTIME_OBJ) $(BINDING_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-z,nodelete $^ -o $@ $(BLAS_LIBS) $(IMG_LIBS) -lz -lm

$(BUILD)/tests/%: tests/c/%.c tests/c/check.h $(BUILD)/libnnruntime.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libnnruntime.a $(LDFLAGS) $(BLAS_LIBS) $(IMG_LIBS) -lz -lm

# The embedding test links the whole library, as a host program would.
$(BUILD)/tests/test_embed: tests/c/test_embed.c tests/c/check.h $(BUILD)/libnnlua.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libnnlua.a $(LDFLAGS) $(LIBS)

deps:
	@bash tools/deps.sh

test: deps
	@$(MAKE) --no-print-directory all SANITIZE=$(SANITIZE)
	@bash tools/run_tests.sh $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/nnlua models/fmnist_cnn.lua --epochs 3 --seed 0

clean:
	rm -rf build build-asan

# nnlua against PyTorch on the reference models (bench/README.md); the
# table is printed and written to build/bench.md.  BENCH_ARGS, e.g. --quick.
.PHONY: bench
bench: all $(BUILD)/bench_peak $(BUILD)/bench_conv
	@NNLUA_BENCH_NO_BUILD=1 sh bench/run.sh $(BENCH_ARGS)

# The machine's float32 ceilings, printed beside the table (bench/peak.c).
$(BUILD)/bench_peak: bench/peak.c
	$(CC) $(CFLAGS) $< -o $@ $(BLAS_LIBS)

# One convolution geometry through the runtime's kernels (bench/conv_layer.c).
$(BUILD)/bench_conv: bench/conv_layer.c $(BUILD)/libnnruntime.a
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libnnruntime.a $(LDFLAGS) $(BLAS_LIBS) $(IMG_LIBS) -lz -lm
