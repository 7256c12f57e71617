# PGXS build of workflow.so (C++17) and the extension's SQL scripts.
# The install script of the current version is generated: every
# src/sql/NN_*.sql, in name order. Released scripts never change: they are
# kept, as shipped, in src/sql/released/. The upgrade script from the last
# release is the files listed in src/sql/upgrade/<from>--<to>.list, in order.
EXTENSION  = workflow
EXTVERSION = 1.10
PREVIOUS   = 1.9
MODULE_big = workflow

CORE_SRCS      = $(sort $(wildcard src/core/*.cpp))
PG_SRCS        = $(sort $(wildcard src/pg/*.cpp))
EXTENSION_SRCS = $(sort $(wildcard src/extension/*.cpp))
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o) $(EXTENSION_SRCS:.cpp=.o)

SQL_PARTS = $(sort $(wildcard src/sql/[0-9]*.sql))
UPGRADE_LIST  = src/sql/upgrade/$(PREVIOUS)--$(EXTVERSION).list
UPGRADE_PARTS = $(shell cat $(UPGRADE_LIST))
DATA_built = workflow--$(EXTVERSION).sql workflow--$(PREVIOUS)--$(EXTVERSION).sql
DATA = $(wildcard src/sql/released/workflow--*.sql)

REGRESS = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=. --load-extension=workflow

PG_CPPFLAGS = -Isrc
PG_CXXFLAGS = -std=c++17 -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register -Wno-cast-function-type
SHLIB_LINK += -lstdc++
# Export only the entry points (src/extension/exports.map): fewer symbols for
# the dynamic loader to look up when a session first loads the library.
SHLIB_LINK += -Wl,--version-script=src/extension/exports.map -Wl,-O1

# The JIT bitcode step would compile C++ without our flags; we do not ship bitcode.
override with_llvm = no

# Track header dependencies (.deps/*.Po), so changing a header rebuilds its users.
override autodepend = yes

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(shlib): src/extension/exports.map

workflow--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $^ > $@

workflow--$(PREVIOUS)--$(EXTVERSION).sql: $(UPGRADE_LIST) $(UPGRADE_PARTS)
	cat $(UPGRADE_PARTS) > $@
