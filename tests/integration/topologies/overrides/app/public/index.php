<?php
// A user's own PHP app (the `app:` override): answers every path, names its node.
header('X-Served-By: ' . (getenv('NODE_NAME') ?: gethostname()));
header('Content-Type: text/plain');
echo "custom app on ", getenv('NODE_NAME'), "\n";
