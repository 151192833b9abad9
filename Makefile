# lich — build, tests, sanitizer build.
#   make              build lichd (build/lichd)
#   make check        unit + integration tests
#   make check-asan   the same under AddressSanitizer + UBSan (build-asan/)
#   make check-vm     tests with a real Linux initiator in a QEMU guest (SKIP_VM=1 skips)
#   make check-all    all of them (and fuzz-regress), with one closing "N passed, N failed" line
CC      ?= gcc
BUILD   ?= build
PKGS    := libibverbs librdmacm numa liburing
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(shell pkg-config --libs cmocka 2>/dev/null)

OPT     ?= -O2
CFLAGS  := $(OPT) -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE -pthread \
	   -Iinclude $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS += $(EXTRA_LDFLAGS)
LDLIBS  := $(PKG_LIBS) -pthread -lm

SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# the sanitizer build also turns on the debug-only consistency checks
SAN_DEFS := -DLICH_DEBUG

LIB_SRCS  := $(sort $(wildcard src/*/*.c))
LIB_OBJS  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
BIN_SRCS  := $(sort $(wildcard src/*.c))
BINS      := $(patsubst src/%.c,$(BUILD)/%,$(BIN_SRCS))
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_SRCS := $(sort $(wildcard tests/bench/*.c))
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

.PHONY: all check check-asan check-vm check-all fuzz fuzz-regress tests bench clean deps-check
all: deps-check $(BINS)

deps-check:
	@for p in $(PKGS) cmocka; do pkg-config --exists $$p || \
	  { echo "missing $$p development files: run scripts/install-deps" >&2; exit 1; }; done

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/liblich.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%: src/%.c $(BUILD)/liblich.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(BUILD)/liblich.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/liblich.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CMOCKA_CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< \
	  $(BUILD)/liblich.a $(CMOCKA_LIBS) $(LDLIBS)

$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/liblich.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP $(LDFLAGS) -o $@ $< $(BUILD)/liblich.a $(LDLIBS)

tests: all $(TEST_BINS)
bench: all $(BENCH_BINS)

check: tests
	@tests/run $(BUILD)

check-vm: all
	@tests/vm/run-tests $(BUILD)

# libFuzzer harnesses (clang): `make fuzz FUZZ_ARGS="600"` runs each for 600 s;
# fuzz-regress replays every seed and every saved reproducer once.
fuzz:
	@tests/fuzz/run $(FUZZ_ARGS)

fuzz-regress:
	@mkdir -p build; tests/fuzz/run --regress >build/fuzz-regress.log 2>&1; rc=$$?; \
	 grep -E 'inputs ok|FAIL|ERROR|error:' build/fuzz-regress.log; \
	 n=$$(grep -c 'inputs ok' build/fuzz-regress.log); \
	 if [ $$rc -eq 0 ]; then echo "$$n 0" >build/.results-fuzz; echo "fuzz-regress: $$n passed, 0 failed"; \
	 else echo "$$n 1" >build/.results-fuzz; tail -30 build/fuzz-regress.log; echo "fuzz-regress: $$n passed, 1 failed"; fi; \
	 [ $$rc -eq 0 ]

check-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  EXTRA_CFLAGS="$(SAN) $(SAN_DEFS)" EXTRA_LDFLAGS="$(SAN)" check

check-all:
	@rm -f build/.results build-asan/.results build/.results-fuzz build/.results-vm
	@$(MAKE) --no-print-directory check; a=$$?; \
	 $(MAKE) --no-print-directory check-asan; b=$$?; \
	 $(MAKE) --no-print-directory fuzz-regress; f=$$?; \
	 $(MAKE) --no-print-directory check-vm; v=$$?; \
	 tests/total build/.results build-asan/.results build/.results-fuzz build/.results-vm; c=$$?; \
	 [ $$a -eq 0 ] && [ $$b -eq 0 ] && [ $$f -eq 0 ] && [ $$v -eq 0 ] && [ $$c -eq 0 ]

clean:
	rm -rf build build-asan

# ---- install / uninstall / deb ----
#   make install [PREFIX=/usr/local] [DESTDIR=]   binaries, man pages, systemd unit,
#     /etc/lich/targets.conf (kept if present, unless DESTDIR is set: packaging)
#   make deb                                      ../lich_*.deb via dpkg-buildpackage
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/lich
SYSCONFDIR ?= /etc
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
INSTALL    ?= install
INST_BINS  := $(filter $(BUILD)/lichd $(BUILD)/lichctl,$(BINS))
MAN5       := docs/man/targets.conf.5
MAN8       := docs/man/lichd.8 docs/man/lichctl.8

.PHONY: install uninstall deb
install: $(INST_BINS)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/lich $(DESTDIR)$(DOCDIR)/examples
	$(INSTALL) -m 755 $(INST_BINS) $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	sed 's|/usr/sbin/|$(SBINDIR)/|g; s|/etc/lich/|$(SYSCONFDIR)/lich/|g' conf/lichd.service \
	  >$(DESTDIR)$(UNITDIR)/lichd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/lichd.service
	$(INSTALL) -m 644 conf/targets.conf.example $(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 644 docs/admin.md $(DESTDIR)$(DOCDIR)/
	@if [ -n "$(DESTDIR)" ] || [ ! -e $(SYSCONFDIR)/lich/targets.conf ]; then \
	  echo "$(INSTALL) -m 644 conf/targets.conf $(DESTDIR)$(SYSCONFDIR)/lich/targets.conf"; \
	  $(INSTALL) -m 644 conf/targets.conf $(DESTDIR)$(SYSCONFDIR)/lich/targets.conf; \
	else echo "keeping the existing $(SYSCONFDIR)/lich/targets.conf"; fi

# The configuration file is left alone (it may hold the admin's targets).
uninstall:
	rm -f $(addprefix $(DESTDIR)$(SBINDIR)/,lichd lichctl) \
	  $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5))) \
	  $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8))) \
	  $(DESTDIR)$(UNITDIR)/lichd.service
	rm -rf $(DESTDIR)$(DOCDIR)

deb:
	dpkg-buildpackage -b -us -uc

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
