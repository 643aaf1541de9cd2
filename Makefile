# Makefile: builds, installs and tests the eventsource extension with PGXS.
#
#   make                  build (warnings are errors)
#   make install          install into the PostgreSQL that pg_config names
#   make installcheck     pg_regress and isolation tests against a running server
#   ./test/run            everything, on a throwaway cluster (the README's test command)

EXTENSION = eventsource
MODULE_big = eventsource
OBJS = src/eventsource.o src/append.o src/read.o src/checkpoint.o src/guard.o src/snapshot.o src/notifier.o src/subscription.o src/projection.o src/lifecycle.o src/statistics.o src/owners.o src/epoch.o
DATA = $(wildcard sql/eventsource--*.sql)

PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers

REGRESS = install append append_errors read plans privileges search_path role_matrix snapshots subscriptions projections handler_renames lifecycle statistics upgrade
REGRESS_OPTS = --inputdir=test --outputdir=. --load-extension=eventsource
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=.

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
