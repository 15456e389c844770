# The kir image that deploy/ runs: one static-enough binary on distroless, as user 65532.
#   docker build -t ghcr.io/kir-dev/kir:0.1.0 .
#   kind load docker-image ghcr.io/kir-dev/kir:0.1.0      # or: k3d image import …
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kir && strip target/release/kir

# glibc and libgcc only (TLS is rustls, SQLite is bundled); no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/kir /usr/local/bin/kir
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kir"]
CMD ["serve", "--help"]
