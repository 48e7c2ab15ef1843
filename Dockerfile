# fridaymorning's own image, for CI jobs (see stacks/gitlab/.gitlab-ci.yml): the static binary, CA
# certificates and a non-root user, FROM scratch. `make image` assembles the build context (the binary is
# built by `make build`, the certificates and the user files come from the build machine) and builds it with
# the classic builder, so nothing is pulled.
#
# The Docker socket is usually root:docker 0660: run the image with the socket's group,
#   docker run --rm --group-add "$(stat -c %g /var/run/docker.sock)" -v /var/run/docker.sock:/var/run/docker.sock \
#     -v "$PWD:/work" fridaymorning/fridaymorning release --config /work/fridaymorning.yaml --image …
# or with --user 0 where the socket allows no group.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY passwd group /etc/
COPY fridaymorning /usr/local/bin/fridaymorning
ENV HOME=/home/fridaymorning
WORKDIR /work
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/fridaymorning"]
