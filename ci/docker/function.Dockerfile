# A Lambda function image without AWS's base image: the function's own static `bootstrap`
# (here the Rust example, examples/rust-transformer) run by `firehose-harness emulate`, which
# serves the Invoke API on port 8080 as the Runtime Interface Emulator in AWS's base images
# does, and takes the function's timeout from AWS_LAMBDA_FUNCTION_TIMEOUT as it does. So
# `firehose-harness check --target image:THIS` works the same on this image and on one built
# FROM public.ecr.aws/lambda/provided.
#
# Built by ci/docker/build.sh --function NAME from static binaries compiled on the host; the
# context holds `firehose-harness` and `bootstrap`.
FROM scratch
COPY firehose-harness /usr/local/bin/firehose-harness
COPY bootstrap /var/task/bootstrap
ENV LAMBDA_TASK_ROOT=/var/task
WORKDIR /var/task
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/firehose-harness", "emulate", "--listen", "0.0.0.0:8080", "--", "/var/task/bootstrap"]
