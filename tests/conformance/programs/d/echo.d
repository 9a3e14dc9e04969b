import std.stdio;

void main()
{
    auto line = readln();
    write(line);
}
