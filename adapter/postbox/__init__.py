"""The SFTP postbus (StUF-LVO era): files of bijlagen sent without inhoud, and (later) files we send.

``client`` holds one reused paramiko session per postbox (pinned host key, reconnect with backoff),
``names`` decides which remote names are acceptable, ``pickup`` is the scheduled job that streams inbox
files into the file store and moves them to ``processed`` once their document is made, and ``bijlagen``
gives a delivery the files of its bijlagen without inhoud (or makes it wait for them).
"""
