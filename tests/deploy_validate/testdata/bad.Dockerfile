# Mistakes the Dockerfile lint must report (tests/deploy_validate): one per
# rule, each named in a comment.
# DL3006: no tag
FROM debian AS build
# DL3000: relative WORKDIR
WORKDIR src
# DL3020: ADD for a local file
ADD . .
# DL3014, DL3015, DL3009: no -y, no --no-install-recommends, lists kept
RUN apt-get update && apt-get install cmake
# DL3005: upgrade; DL3004: sudo; DL3003: cd
RUN apt-get upgrade && sudo make && cd /tmp
# DL4006: a pipe without pipefail
RUN make 2>&1 | tee build.log
# secret: a secret baked into a layer
ENV SESSION_SECRET=abc
# DL3007: latest
FROM debian:latest
COPY --from=build /src/app /app
# syntax: unknown instruction
RUNN true
# DL3025: shell-form ENTRYPOINT
ENTRYPOINT /app
# DL3002 (no USER), stopsignal, healthcheck: missing in this built stage
