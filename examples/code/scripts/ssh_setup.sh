#!/bin/sh
# Install the deploy key on a fresh build machine.
mkdir -p "$HOME/.ssh"
cat > "$HOME/.ssh/id_deploy" <<'KEY'
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBsYW1wbGVrZXlmb3JsbWZvcmdlc2FtcGxlZGF0YW9ubHkAAAAAAAAAAAAA
-----END OPENSSH PRIVATE KEY-----
KEY
chmod 600 "$HOME/.ssh/id_deploy"
echo "deploy key installed"
