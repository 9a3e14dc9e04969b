#lang racket/base
(define line (read-line))
(unless (eof-object? line)
  (displayln line))
