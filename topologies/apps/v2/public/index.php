<?php
// v2 of the reference app, for the deploy examples: the same behaviour, and every answer says
// which release served it (X-Release), so a test can see the deploy reach each node. A deploy
// keeps the release it replaced at /srv/app.previous; this version layers over that one.
declare(strict_types=1);

header('X-Release: v2');
require '/srv/app.previous/public/index.php';
