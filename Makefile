# Makefile: builds, installs and tests the eventsource extension with PGXS.
#
#   make                  build (warnings are errors), and the install script of the current version
#   make install          install into the PostgreSQL that pg_config names
#   make installcheck     pg_regress and isolation tests against a running server
#   ./test/run            everything, on a throwaway cluster (the README's test command)

EXTENSION = eventsource
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'$$/\1/p" $(EXTENSION).control)
MODULE_big = eventsource
OBJS = src/eventsource.o src/kept_plan.o src/log.o src/arguments.o src/streams.o src/append.o src/stream_write.o src/read.o src/checkpoint.o src/guard.o src/snapshot.o src/notifier.o src/launcher.o src/worker_shared.o src/trust.o src/worker_transaction.o src/subscription.o src/projection.o src/lifecycle.o src/statistics.o src/owners.o src/epoch.o src/query.o src/consistency.o

# The install script of the current version is built from sql/source/*.sql, concatenated in name
# order; the first version's install script and the upgrade scripts are kept as written. (PGXS
# builds DATA_built with `make` and removes it with `make clean`.)
INSTALL_SOURCES = $(sort $(wildcard sql/source/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = sql/$(EXTENSION)--0.1.0.sql $(wildcard sql/$(EXTENSION)--*--*.sql)

PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers

REGRESS = install append append_errors append_to_streams tags query_filters consistency read plans privileges search_path role_matrix snapshots subscriptions projections handler_renames lifecycle statistics upgrade
REGRESS_OPTS = --inputdir=test --outputdir=. --load-extension=eventsource
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=.

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# A blank line between two sources; the first line says where the script comes from. The
# directory is a prerequisite too: removing a source (a branch switch that deletes one) changes
# only the directory's time, and the script must lose that source's objects.
$(DATA_built): $(INSTALL_SOURCES) sql/source $(EXTENSION).control
	{ echo '-- $(notdir $@): built by make from sql/source/*.sql (edit those, not this file).'; \
	  awk 'FNR == 1 && NR > 1 { print "" } { print }' $(INSTALL_SOURCES); } > $@
