# bootstorm — build, test, bench, demo.  `make help` lists the targets.
#
# Layout: every .c under io/ proto/ engine/ (but engine/main.c) goes into
# libbootstorm.a; engine/main.c is bootstorm; bench/load/*.c is bootstorm-load;
# each tests/unit/<dir>/test_<name>.c is its own Criterion binary; each
# tests/fuzz/fuzz_<name>.c is a libFuzzer target.  Objects go to build/<variant>/.

BUILD    ?= release
O        := build/$(BUILD)
CC       ?= gcc
CFLAGS_COMMON := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
                 -D_GNU_SOURCE -I. -g -MMD -MP -pthread
LDLIBS_COMMON := -luring -pthread

ifeq ($(BUILD),release)
  CFLAGS  := $(CFLAGS_COMMON) -O2
  LDLIBS  := $(LDLIBS_COMMON) -ljemalloc
else ifeq ($(BUILD),asan)
  CFLAGS  := $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
  LDLIBS  := $(LDLIBS_COMMON)
else ifeq ($(BUILD),tsan)
  CFLAGS  := $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer -fsanitize=thread
  LDFLAGS += -fsanitize=thread
  LDLIBS  := $(LDLIBS_COMMON)
else
  $(error BUILD must be release, asan or tsan)
endif

LIB_SRC   := $(sort $(wildcard io/*.c proto/*.c engine/*.c))
LIB_SRC   := $(filter-out engine/main.c,$(LIB_SRC))
LIB_OBJ   := $(LIB_SRC:%.c=$(O)/obj/%.o)
LOAD_SRC  := $(sort $(wildcard bench/load/*.c))
LOAD_OBJ  := $(LOAD_SRC:%.c=$(O)/obj/%.o)
UNIT_SRC  := $(sort $(wildcard tests/unit/*/test_*.c))
UNIT_BIN  := $(UNIT_SRC:%.c=$(O)/%)
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)

LIB       := $(O)/libbootstorm.a
BOOTSTORM := $(O)/bin/bootstorm
LOADGEN   := $(O)/bin/bootstorm-load

FUZZ_SECONDS ?= 20
DEMO_MACHINES ?= 200

.PHONY: all deps test unit integration e2e asan tsan bench fuzz demo clean help
# objects made on the way to a test binary are kept: deleting them as intermediates
# relinked every unit binary on the next make
.SECONDARY:
all: $(BOOTSTORM) $(LOADGEN)

help:
	@echo "make deps        install missing Debian packages (apt-get, as root)"
	@echo "make all         build bootstorm and bootstorm-load (build/release/bin)"
	@echo "make test        deps + build + unit tests + integration tests (+ the ASan/UBSan unit run in .ci/run)"
	@echo "make unit        Criterion unit suites only"
	@echo "make integration integration suites (real clients, namespaces; root)"
	@echo "make asan|tsan   the unit and integration tests under ASan+UBSan / TSan"
	@echo "make fuzz        every libFuzzer target for FUZZ_SECONDS=$(FUZZ_SECONDS) s each"
	@echo "make bench       side-by-side benchmarks (bench/*.sh), results in bench/RESULTS.md"
	@echo "make e2e         real firmware boots under qemu (slow)"
	@echo "make demo        sample tree + bootstorm + bootstorm-load with $(DEMO_MACHINES) machines"

deps:
	@tools/deps.sh

$(O)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BOOTSTORM): $(O)/obj/engine/main.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(LOADGEN): $(LOAD_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/tests/unit/%: $(O)/obj/tests/unit/%.o $(O)/obj/tests/unit/common/lsan_runner.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(LDLIBS)

unit: $(UNIT_BIN)
	@tools/run-unit.sh $(UNIT_BIN)

integration: $(BOOTSTORM) $(LOADGEN)
	@BOOTSTORM=$(abspath $(BOOTSTORM)) LOADGEN=$(abspath $(LOADGEN)) tests/integration/run.sh

JOBS ?= $(shell nproc)
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@$(MAKE) --no-print-directory -j$(JOBS) $(UNIT_BIN)
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@BOOTSTORM=$(abspath $(BOOTSTORM)) bash tests/e2e/run.sh --quick

asan:
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=asan all $(UNIT_SRC:%.c=build/asan/%)
	@$(MAKE) --no-print-directory BUILD=asan unit
	@INTEGRATION_BACKENDS=uring $(MAKE) --no-print-directory BUILD=asan integration

# Criterion cannot start under TSan (its BoxFort arena collides with TSan's
# shadow, Criterion #274), so the concurrency suites are built against an
# in-process stand-in (tests/tsan/) and the integration suites run against a
# TSan-built server.
TSAN_UNITS := tests/unit/engine/test_addr_pool tests/unit/engine/test_lease_table \
              tests/unit/engine/test_lease_journal tests/unit/engine/test_lease_store \
              tests/unit/engine/test_inventory
build/tsan/tsan/%: tests/unit/%.c tests/tsan/runner.c build/tsan/libbootstorm.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) -Itests/tsan -O1 -fsanitize=thread -o $@ $< tests/tsan/runner.c build/tsan/libbootstorm.a $(LDLIBS_COMMON)

tsan:
	@$(MAKE) --no-print-directory BUILD=tsan all
	@$(MAKE) --no-print-directory BUILD=tsan $(TSAN_UNITS:tests/unit/%=build/tsan/tsan/%)
	@set -e; for t in $(TSAN_UNITS:tests/unit/%=build/tsan/tsan/%); do echo "== $$t"; TSAN_OPTIONS=halt_on_error=1 $$t; done
	@$(MAKE) --no-print-directory BUILD=tsan integration

build/fuzz/%: tests/fuzz/%.c $(filter proto/%,$(LIB_SRC)) $(wildcard proto/*.h)
	@mkdir -p $(@D)
	clang -g -O1 -I. -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -o $@ $< $(filter proto/%.c,$^)

fuzz: $(FUZZ_BIN)
	@tools/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

bench:
	@DEPS_SET=bench tools/deps.sh
	@$(MAKE) --no-print-directory all
	@BOOTSTORM=$(abspath $(BOOTSTORM)) LOADGEN=$(abspath $(LOADGEN)) bench/run-all.sh

e2e:
	@DEPS_SET=e2e tools/deps.sh
	@$(MAKE) --no-print-directory all
	@BOOTSTORM=$(abspath $(BOOTSTORM)) tests/e2e/run.sh

demo: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@BOOTSTORM=$(abspath $(BOOTSTORM)) LOADGEN=$(abspath $(LOADGEN)) MACHINES=$(DEMO_MACHINES) tools/demo.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(LOAD_OBJ:.o=.d) $(O)/obj/engine/main.d $(UNIT_SRC:%.c=$(O)/obj/%.d)
