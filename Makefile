# The two commands: `make run` and `make test`. Both install what is missing first.
#   make run  ARGS="--http 127.0.0.1:9000"   build (release) and start switchboard serve
#   make test                                gcc release build (unit tests) + clang ASan/UBSan
#                                            build (unit, interop and fuzz tests)
#   make bench                               benchmarks against nginx (not part of test)
JOBS ?= $(shell nproc)
REL := build/release
SAN := build/asan
FUZZ_SECONDS ?= 30

.PHONY: all deps build run test sanitize bench format clean

all: build

# Node packages too: /docs serves Swagger UI from node_modules/swagger-ui-dist.
deps:
	@scripts/deps.sh build
	@scripts/node-deps.sh

build: deps
	@cmake -S . -B $(REL) -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null
	@cmake --build $(REL) -j $(JOBS)

run: build
	./$(REL)/switchboard serve $(ARGS)

sanitize: deps
	@scripts/deps.sh test
	@cmake -S . -B $(SAN) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	  -DSB_SANITIZE=ON -DSB_FUZZ=ON >/dev/null
	@cmake --build $(SAN) -j $(JOBS)

# Unit tests run in both builds: gcc -O2 and clang differ in optimisation and in unspecified
# behaviour (argument evaluation order), and each has caught what the other missed.
test: build sanitize
	cd $(REL) && ctest -L unit --output-on-failure -j 2
	cd $(SAN) && SB_FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --output-on-failure -j 2

bench: build
	@scripts/deps.sh bench
	bench/http/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
