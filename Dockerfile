# Wharf in a container: built in a Rust image, run as a non-root user on a slim Debian.
#   docker build -t wharf .
#   docker run -d --name wharf -v wharf-data:/var/lib/wharf \
#     -p 25:25 -p 587:587 -p 465:465 -p 143:143 -p 993:993 -p 110:110 -p 995:995 \
#     -p 4190:4190 -p 80:80 -p 443:443 wharf serve --hostname mail.example.com
# The release build takes about 17 minutes on 2 cores.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin wharf

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system wharf \
 && useradd --system --gid wharf --home-dir /var/lib/wharf --shell /usr/sbin/nologin wharf \
 && install -d -o wharf -g wharf -m 0700 /var/lib/wharf /etc/wharf
COPY --from=build /src/target/release/wharf /usr/bin/wharf
COPY dist/wharf.toml /etc/wharf/wharf.toml
# The container's own user may bind ports below 1024 only with this capability, which the
# image grants to the binary (no root at run time).
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
 && setcap cap_net_bind_service=+ep /usr/bin/wharf \
 && apt-get purge -y libcap2-bin && rm -rf /var/lib/apt/lists/*
USER wharf
VOLUME /var/lib/wharf
EXPOSE 25 587 465 143 993 110 995 4190 80 443
ENV WHARF_CONFIG=/etc/wharf/wharf.toml
ENTRYPOINT ["/usr/bin/wharf"]
CMD ["serve"]
