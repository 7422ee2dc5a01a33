# Run inside the guest by tests/vm/run.sh (cwd: the repo; /results is shared with the host).
# Every real-BPF test (marker `root`, tests/vm_only included) on this kernel. Each
# `nettop record` compiles its probes with clang under emulation (15-50 s a program), so
# tests that need one probe pass `--probes`; the whole run should stay within ~30 minutes.
echo "vm: kernel $(uname -r); sock tracepoints: $(ls /sys/kernel/tracing/events/sock | tr '\n' ' ')"
.venv/bin/python -m pytest -p no:cacheprovider -m root -rA -v --durations=20 \
  --junitxml=/results/junit.xml -o junit_family=xunit2 -o junit_logging=system-out \
  2>&1 | tee /results/pytest.log
exit "${PIPESTATUS[0]}"
