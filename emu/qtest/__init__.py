"""qtest: QEMU's line-based test protocol (docs/devel/qtest.rst), server and client."""
