# Castellan: build the release binary, then ship it alone on a slim Debian.
#
#   docker build -t castellan .
#   docker run -p 8080:8080 -e CASTELLAN_ISSUER=https://id.example.com -v castellan:/var/lib/castellan castellan
#
# CASTELLAN_ISSUER must be set to the public https URL clients see (the default,
# http://localhost:8080, is only right for local trials). Templates (askama) and the CSS
# (include_str!) are compiled into the binary; the runtime image needs only libssl3, which
# webauthn-rs (passkeys) links to.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo/ .cargo/
COPY migrations/ migrations/
COPY src/ src/
COPY templates/ templates/
COPY static/ static/
# Cargo.toml declares the `signing` bench; the manifest does not parse without its file.
COPY benches/ benches/
RUN cargo build --release --locked --bin castellan

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/castellan --no-create-home castellan \
 && mkdir -p /var/lib/castellan /etc/castellan \
 && chown castellan:castellan /var/lib/castellan
COPY --from=builder /src/target/release/castellan /usr/local/bin/castellan
# Every key with its default; the environment below and at `docker run` overrides it.
COPY config/castellan.toml /etc/castellan/castellan.toml
WORKDIR /var/lib/castellan
ENV CASTELLAN_CONFIG=/etc/castellan/castellan.toml \
    CASTELLAN_LISTEN=0.0.0.0:8080 \
    CASTELLAN_DATABASE_URL=sqlite:///var/lib/castellan/castellan.db?mode=rwc
EXPOSE 8080
VOLUME /var/lib/castellan
USER castellan
ENTRYPOINT ["castellan"]
CMD ["serve"]
