<?php
function main( {
    echo "unreachable"
}
