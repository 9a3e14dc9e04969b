<?php
$line = fgets(STDIN);
if ($line !== false) {
    echo $line;
}
