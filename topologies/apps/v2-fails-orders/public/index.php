<?php
// v2 with a regression, for topologies/examples/canary-bad.yaml: 5% of POST /orders answer 500
// before anything is written (the canary assertion must catch it). Everything else is the
// release it replaced, which a deploy keeps at /srv/app.previous.
declare(strict_types=1);

header('X-Release: v2-fails-orders');
$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
if (($_SERVER['REQUEST_METHOD'] ?? '') === 'POST' && $path === '/orders' && random_int(1, 100) <= 5) {
    http_response_code(500);
    header('Content-Type: application/json');
    echo json_encode(['error' => 'v2 regression: order rejected']), "\n";
    exit;
}
require '/srv/app.previous/public/index.php';
