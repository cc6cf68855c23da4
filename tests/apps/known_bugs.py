"""The tests of this suite that fail today because of a simnet bug (issue 9).

``conftest.py`` marks each listed test ``xfail(strict=True)``: when the fix
lands the test passes, the strict mark turns that into a failure, and the
entry must be deleted. Every bug was diagnosed on the fake network with the
program proven right on real loopback; the helper fixing it is named in
brackets. Checked against the fixing branches: with both merged, every entry
here passes (and with only one, only the entries naming that one's bugs).
"""

PROGRESS = ("FakeNetwork.block() gives up (TimeoutError/Deadlock) while dispatchers make "
            "progress in passes that move no bytes (a flag flipped, a spurious EAGAIN) [fid-a]")
BUSY_POLL = ("a program that busy-polls (timeout 0) never sees virtual time pass, so data in "
             "flight never arrives [fid-a]")
EAGAIN = ("eagain rules leak out of blocking/timeout-mode sockets, fake and real (BlockingIOError; "
          "through makefile() a silent short or empty read) [fid-a]")
MAKEFILE = "close() with a live makefile() gives EBADF on reads through the file [fid-b]"
SOCKET_KEYS = "maps keyed by socket objects raise TypeError once a fake socket exists [fid-b]"
ADDRESSES = ("a TCP connect to 0.0.0.0 (a ''-bound listener's getsockname()) goes from 10.0.0.1 "
             "to 0.0.0.0; Linux: 127.0.0.1 to 127.0.0.1 [fid-b]")

#: "file::test[id]" -> the bugs that make it fail
KNOWN_BUGS: dict[str, tuple[str, ...]] = {
    # HTTP: the server's "response sent, read the next request" pass moves no bytes;
    # http.client closes its socket on Connection: close and reads the body from the file
    "test_http.py::test_http_client_keep_alive_and_connection_close[fake]": (PROGRESS, MAKEFILE),
    "test_http.py::test_http_client_keep_alive_and_connection_close[fake-faults]": (PROGRESS, MAKEFILE, EAGAIN),
    "test_http.py::test_http_client_keep_alive_and_connection_close[real-faults]": (EAGAIN,),
    "test_http.py::test_urllib_request_reads_after_closing_the_socket[fake]": (MAKEFILE,),
    "test_http.py::test_urllib_request_reads_after_closing_the_socket[fake-faults]": (MAKEFILE, EAGAIN),
    "test_http.py::test_urllib_request_reads_after_closing_the_socket[real-faults]": (EAGAIN,),
    # FTP, SMTP: a spurious EAGAIN on the server's recv is a pass that moves no bytes
    "test_ftp.py::test_ftplib_login_list_retrieve_store_over_pasv[fake-faults]": (PROGRESS, EAGAIN),
    "test_ftp.py::test_ftplib_login_list_retrieve_store_over_pasv[real-faults]": (EAGAIN,),
    "test_ftp.py::test_ftplib_over_ipv6_uses_epsv[fake-faults]": (PROGRESS, EAGAIN),
    "test_ftp.py::test_ftplib_over_ipv6_uses_epsv[real-faults]": (EAGAIN,),
    "test_smtp.py::test_smtplib_ehlo_helo_sendmail_with_dot_stuffing[fake-faults]": (PROGRESS, EAGAIN),
    "test_smtp.py::test_smtplib_ehlo_helo_sendmail_with_dot_stuffing[real-faults]": (EAGAIN,),
    "test_smtp.py::test_smtplib_to_a_server_bound_to_all_interfaces[fake]": (ADDRESSES,),
    "test_smtp.py::test_smtplib_to_a_server_bound_to_all_interfaces[fake-faults]": (ADDRESSES, PROGRESS, EAGAIN),
    "test_smtp.py::test_smtplib_to_a_server_bound_to_all_interfaces[real-faults]": (EAGAIN,),
    "test_smtp.py::test_smtplib_with_blocking_sockets[fake-faults]": (PROGRESS, EAGAIN),
    "test_smtp.py::test_smtplib_with_blocking_sockets[real-faults]": (EAGAIN,),
    # key-value store
    "test_kvstore.py::test_socket_keyed_map_served_by_loop_and_poll[fake]": (SOCKET_KEYS,),
    "test_kvstore.py::test_socket_keyed_map_served_by_loop_and_poll[fake-faults]": (SOCKET_KEYS, EAGAIN),
    "test_kvstore.py::test_socket_keyed_map_served_by_loop_and_poll[real-faults]": (EAGAIN,),
    "test_kvstore.py::test_busy_polling_program_with_a_file_number_map[fake-faults]": (BUSY_POLL, EAGAIN),
    "test_kvstore.py::test_busy_polling_program_with_a_file_number_map[real-faults]": (EAGAIN,),
    "test_kvstore.py::test_poll_program_with_a_file_number_map[fake-faults]": (EAGAIN,),
    "test_kvstore.py::test_poll_program_with_a_file_number_map[real-faults]": (EAGAIN,),
    # the 20-seed sweeps on the fake network under the fault mix
    "test_fake_runs.py::test_survives_the_fault_mix_under_many_seeds[http-keep-alive]": (PROGRESS, MAKEFILE, EAGAIN),
    "test_fake_runs.py::test_survives_the_fault_mix_under_many_seeds[http-urllib]": (MAKEFILE, EAGAIN),
    "test_fake_runs.py::test_survives_the_fault_mix_under_many_seeds[ftp]": (PROGRESS, EAGAIN),
    "test_fake_runs.py::test_survives_the_fault_mix_under_many_seeds[ftp-ipv6]": (PROGRESS, EAGAIN),
    "test_fake_runs.py::test_survives_the_fault_mix_under_many_seeds[smtp]": (PROGRESS, EAGAIN),
    "test_fake_runs.py::test_survives_the_fault_mix_under_many_seeds[smtp-any-address]": (ADDRESSES, PROGRESS, EAGAIN),
    "test_fake_runs.py::test_survives_the_fault_mix_under_many_seeds[smtp-blocking]": (PROGRESS, EAGAIN),
    "test_fake_runs.py::test_survives_the_fault_mix_under_many_seeds[kv-socket-keys]": (SOCKET_KEYS, EAGAIN),
    "test_fake_runs.py::test_survives_the_fault_mix_under_many_seeds[kv-busy-poll]": (BUSY_POLL, EAGAIN),
    "test_fake_runs.py::test_survives_the_fault_mix_under_many_seeds[kv-poll]": (EAGAIN,),
    "test_fake_runs.py::test_smtp_session_on_the_plugins_fake_net": (PROGRESS, EAGAIN),
}
