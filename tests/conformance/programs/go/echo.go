package main

import (
	"bufio"
	"fmt"
	"os"
)

func main() {
	reader := bufio.NewReader(os.Stdin)
	line, err := reader.ReadString('\n')
	if err != nil && line == "" {
		return
	}
	if line[len(line)-1] != '\n' {
		line += "\n"
	}
	fmt.Print(line)
}
