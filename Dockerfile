# The byoda pod's image: one static binary on an empty base.
#
#   docker build -t byoda/byoda-go:latest .
#   deploy/docker-launch.sh --dry-run     # then without --dry-run
#
# The final stage is `scratch`, not a distro or distroless base: the binary
# is static (CGO_ENABLED=0, SQLite is pure Go), so the image needs only the
# CA certificates for the directory and the ACME server, a non-root user and
# the directories below, all copied from the build stage. No shell, no
# package manager, and one registry to trust at build time. There is no
# tzdata: the pod keeps and logs times in UTC.
#
# Ports (EXPOSE documents them; docker-launch.sh publishes those the settings
# need):
#   443  HTTPS_PORT  browsers and clients with a JWT
#   444  POD_PORT    other pods and services, with client certificates
#   80   ACME_HTTP_PORT  Let's Encrypt's HTTP-01 challenge, only with a
#        CUSTOM_DOMAIN whose certificate the pod manages
#   8000 HTTP_PORT   plain HTTP for the host's web server, only with
#        SHARED_WEBSERVER, published on 127.0.0.1 alone
#
# Volumes: /byoda (ROOT_DIR) holds the pod's keys, certificates and data;
# /var/www/wwwroot/logs (LOGDIR) its log files. Both belong to uid 65532.
# docs/deploy.md says more, with the image's size and how it was measured.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/usr/local/bin/byoda ./cmd/byoda

# The final image's files: root's in /out, and the two directories of the
# pod's user 65532 (the number distroless images use for "nonroot") in
# /pod.
RUN mkdir -p /out/etc/ssl/certs /out/tmp /pod/byoda /pod/logs && \
	cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ && \
	echo 'byoda:x:65532:65532:byoda pod:/byoda:/sbin/nologin' >/out/etc/passwd && \
	echo 'byoda:x:65532:' >/out/etc/group && \
	chmod 1777 /out/tmp && \
	chmod 0700 /pod/byoda /pod/logs

FROM scratch
COPY --from=build /out/ /
COPY --from=build --chown=65532:65532 /pod/byoda /byoda
COPY --from=build --chown=65532:65532 /pod/logs /var/www/wwwroot/logs
USER 65532:65532
EXPOSE 443 444 80 8000
VOLUME ["/byoda", "/var/www/wwwroot/logs"]
ENTRYPOINT ["/usr/local/bin/byoda"]
CMD ["pod"]
