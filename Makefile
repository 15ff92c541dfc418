# The two commands of the README. Everything else hangs off these.
.PHONY: dev test build bootstrap

dev:        ## run Confab locally (web client + stand-in LLM) on 127.0.0.1:$$PORT (8787)
	bash scripts/dev.sh

test:       ## install what is missing, build, lint, run all tests, dry-run the deploy
	bash scripts/test.sh

bootstrap:  ## install toolchain pieces and npm packages only
	bash scripts/bootstrap.sh

build:      ## build the release wasm worker into build/
	bash scripts/bootstrap.sh && bash scripts/build.sh
