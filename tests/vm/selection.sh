# Run inside the guest by tests/vm/run.sh (cwd: the repo; /results is shared with the host).
# The real-BPF tests whose kernel paths differ on a distribution kernel, plus tests/vm_only,
# and the own netlink decoders (sock_diag's decoding and one-walk dump, the qdisc dump; no BPF)
# on an older kernel's layouts.
# Each `nettop record` compiles its probes with clang under emulation (15-50 s a program;
# all six take ~90 s), so a test added here should pass `--probes`; stay within ~30 minutes.
echo "vm: kernel $(uname -r); sock tracepoints: $(ls /sys/kernel/tracing/events/sock | tr '\n' ' ')"
.venv/bin/python -m pytest -p no:cacheprovider -m root -rA -v --durations=20 \
  --junitxml=/results/junit.xml -o junit_family=xunit2 -o junit_logging=system-out \
  tests/vm_only tests/test_tcp_integration.py tests/test_retransmits_integration.py \
  tests/test_socket_slots.py::test_each_interval_counts_its_own_writes_in_either_layout \
  tests/test_socket_slots.py::test_a_cleaned_half_is_empty_whether_its_hash_is_kept_or_replaced \
  tests/test_sizes_integration.py tests/test_queues_integration.py::test_htb_tcp_latency_and_counts \
  tests/test_tcp_info_probe.py::test_own_sock_diag_decoder_agrees_with_pyroute2 \
  tests/test_tcp_info_probe.py::test_one_dump_lists_both_families_or_falls_back_to_one_per_family \
  tests/test_queues_integration.py::test_own_qdisc_decoder_agrees_with_pyroute2 \
  2>&1 | tee /results/pytest.log
exit "${PIPESTATUS[0]}"
