# The meshgate image: one static binary for `serve` (gateway) and
# `controller`. Build: docker build -t meshgate .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/meshgate ./cmd/meshgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/meshgate /usr/local/bin/meshgate
USER 65532:65532
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/meshgate"]
