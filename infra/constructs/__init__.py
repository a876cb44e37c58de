"""One construct per box of the architecture diagram, wired together in `infra.stack`."""
