# Run inside the guest by tests/vm/run.sh (cwd: the repo; /results is shared with the host).
# The integration tests that exercise kernel paths, plus tests/vm_only. Keep it within
# ~20-30 minutes under emulation: every `nettop record` compiles its BPF with clang.
echo "vm: kernel $(uname -r); sock tracepoints: $(ls /sys/kernel/tracing/events/sock | tr '\n' ' ')"
exec .venv/bin/python -m pytest -p no:cacheprovider -rA -v --durations=15 \
  --junitxml=/results/junit.xml -o junit_family=xunit2 \
  tests/test_tcp_integration.py tests/vm_only \
  2>&1 | tee /results/pytest.log
